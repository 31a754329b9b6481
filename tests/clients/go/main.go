// Cloudinary's Go SDK against a Visual Search server: every call a user makes around visual_search that
// the SDK exposes. Prints one JSON line per call ({"name", "ok", "status", "error"}) and exits 1 if any
// call had an unexpected outcome. Run by tests/functional/test_client_go.py, which sets the environment
// (see tests/clients/README.md). https: Go trusts the server's self-signed certificate through SSL_CERT_FILE.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudinary/cloudinary-go/v2"
	"github.com/cloudinary/cloudinary-go/v2/api"
	"github.com/cloudinary/cloudinary-go/v2/api/admin"
	"github.com/cloudinary/cloudinary-go/v2/api/uploader"
)

const unknownAssetID = "ffffffffffffffffffffffffffffffff"

// statusRecorder keeps the status of the last response: the SDK returns errors as a message in the
// result, without the HTTP status.
type statusRecorder struct{ last int }

func (s *statusRecorder) RoundTrip(request *http.Request) (*http.Response, error) {
	s.last = 0
	response, err := http.DefaultTransport.RoundTrip(request)
	if response != nil {
		s.last = response.StatusCode
	}
	return response, err
}

type line struct {
	Name   string  `json:"name"`
	OK     bool    `json:"ok"`
	Status *int    `json:"status"`
	Error  *string `json:"error"`
}

var (
	failed   bool
	recorder = &statusRecorder{}
	ctx      = context.Background()
)

func env(name string) string {
	value, found := os.LookupEnv(name)
	if !found {
		panic(name + " is not set")
	}
	return value
}

func report(name string, ok bool, message string) {
	failed = failed || !ok
	out := line{Name: name, OK: ok}
	if recorder.last != 0 {
		status := recorder.last
		out.Status = &status
	}
	if message != "" {
		out.Error = &message
	}
	encoded, _ := json.Marshal(out)
	fmt.Println(string(encoded))
}

// call reports one call that must succeed: err is a transport error, apiError the message the SDK
// decoded from an error answer, problem what check found wrong in a successful answer.
func call(name string, err error, apiError string, problem func() string) bool {
	switch {
	case err != nil:
		report(name, false, err.Error())
	case apiError != "" || recorder.last != http.StatusOK:
		report(name, false, apiError)
	default:
		if wrong := problem(); wrong != "" {
			report(name, false, "unexpected answer: "+wrong)
			return false
		}
		report(name, true, "")
		return true
	}
	return false
}

// refused reports one call that must fail with status.
func refused(name string, status int, err error) {
	switch {
	case err != nil:
		report(name, false, err.Error())
	case recorder.last != status:
		report(name, false, fmt.Sprintf("expected %d", status))
	default:
		report(name, true, "")
	}
}

func client(secret string) *cloudinary.Cloudinary {
	cld, err := cloudinary.NewFromParams(env("VS_CLOUD_NAME"), env("VS_API_KEY"), secret)
	if err != nil {
		panic(err)
	}
	chunk, err := strconv.ParseInt(env("VS_CHUNK_SIZE"), 10, 64)
	if err != nil {
		panic(err)
	}
	// Each API keeps its own copy of the configuration.
	for _, api := range []*struct {
		prefix *string
		chunk  *int64
		client *http.Client
	}{
		{&cld.Admin.Config.API.UploadPrefix, &cld.Admin.Config.API.ChunkSize, &cld.Admin.Client},
		{&cld.Upload.Config.API.UploadPrefix, &cld.Upload.Config.API.ChunkSize, &cld.Upload.Client},
	} {
		*api.prefix = env("VS_UPLOAD_PREFIX")
		*api.chunk = chunk
		*api.client = http.Client{Transport: recorder}
	}
	return cld
}

func publicIDs(assets []api.BriefAssetResult) []string {
	ids := []string{}
	for _, asset := range assets {
		ids = append(ids, asset.PublicID)
	}
	return ids
}

// walk lists every page, following next_cursor (bounded, so a cursor that never ends fails).
func walk(list func(cursor string) (*admin.AssetsResult, error)) ([]string, string, error) {
	seen, cursor := []string{}, ""
	for page := 0; page < 50; page++ {
		result, err := list(cursor)
		if err != nil || result.Error.Message != "" {
			return seen, result.Error.Message, err
		}
		seen = append(seen, publicIDs(result.Assets)...)
		if cursor = result.NextCursor; cursor == "" {
			return seen, "", nil
		}
	}
	return seen, "more than 50 pages", nil
}

// sameSet: seen holds no repeat and exactly the ids in expected (not empty).
func sameSet(seen []string, expected map[string]bool) bool {
	unique := map[string]bool{}
	for _, id := range seen {
		unique[id] = true
	}
	if len(expected) == 0 || len(unique) != len(seen) || len(unique) != len(expected) {
		return false
	}
	for id := range expected {
		if !unique[id] {
			return false
		}
	}
	return true
}

// stored is the asset as the Admin API shows it (empty when the call fails: the check then fails).
func stored(cld *cloudinary.Cloudinary, publicID string) *admin.AssetResult {
	found, err := cld.Admin.Asset(ctx, admin.AssetParams{PublicID: publicID})
	if err != nil {
		return &admin.AssetResult{}
	}
	return found
}

// custom is the `custom` map of an upload or explicit answer's context ({"custom": {...}}).
func custom(context api.Metadata) map[string]string {
	out := map[string]string{}
	pairs, _ := context["custom"].(map[string]interface{})
	for key, value := range pairs {
		out[key], _ = value.(string)
	}
	return out
}

func unless(ok bool, problem string) string {
	if ok {
		return ""
	}
	return problem
}

func main() {
	cld := client(env("VS_API_SECRET"))
	wrong := client("not-the-secret")
	prefix, tag, probe := env("VS_PUBLIC_ID_PREFIX"), env("VS_TAG"), env("VS_PROBE_PUBLIC_ID")
	deleteTag := tag + "-delete"
	made := map[string]bool{} // public_ids this program uploaded successfully

	// -- visual_search, four ways
	byText, err := cld.Admin.VisualSearch(ctx, admin.VisualSearchParams{Text: "a pair of shoes"})
	call("visual_search_text", err, byText.Error.Message, func() string {
		return unless(len(byText.Assets) > 0, "no resources")
	})
	byURL, err := cld.Admin.VisualSearch(ctx, admin.VisualSearchParams{ImageURL: env("VS_PROBE_URL")})
	call("visual_search_image_url", err, byURL.Error.Message, func() string {
		return unless(len(byURL.Assets) > 0 && byURL.Assets[0].PublicID == probe, "first hit is not "+probe)
	})
	byFile, err := cld.Admin.VisualSearch(ctx, admin.VisualSearchParams{ImageFile: env("VS_PROBE_FILE")})
	call("visual_search_image_file", err, byFile.Error.Message, func() string {
		return unless(len(byFile.Assets) > 0 && byFile.Assets[0].PublicID == probe, "first hit is not "+probe)
	})
	seed := unknownAssetID
	if len(byText.Assets) > 0 {
		seed = byText.Assets[0].AssetID
	}
	byID, err := cld.Admin.VisualSearch(ctx, admin.VisualSearchParams{ImageAssetID: seed})
	call("visual_search_image_asset_id", err, byID.Error.Message, func() string {
		found := slices.ContainsFunc(byID.Assets, func(a api.BriefAssetResult) bool { return a.AssetID == seed })
		return unless(len(byID.Assets) > 0 && !found, "bad neighbours")
	})

	// -- Upload API: Upload posts to auto/upload, and in parts (X-Unique-Upload-Id, Content-Range) once the
	// file is larger than the configured chunk size: the SDK has no separate upload_large.
	uploaded, err := cld.Upload.Upload(ctx, env("VS_UPLOAD_FILE"),
		uploader.UploadParams{PublicID: prefix + "/a", Tags: api.CldAPIArray{tag, tag + "-2"}})
	if call("upload", err, uploaded.Error.Message, func() string {
		return unless(uploaded.PublicID == prefix+"/a" && uploaded.AssetID != "" && slices.Contains(uploaded.Tags, tag) && slices.Contains(uploaded.Tags, tag+"-2"),
			"not the upload")
	}) {
		made[uploaded.PublicID] = true
	}
	assetID := uploaded.AssetID
	if assetID == "" {
		assetID = unknownAssetID
	}
	byAssetID, err := cld.Admin.AssetByAssetID(ctx, admin.AssetByAssetIDParams{AssetID: assetID})
	call("resource_by_asset_id", err, byAssetID.Error.Message, func() string {
		return unless(byAssetID.PublicID == prefix+"/a", "another asset")
	})
	largeBytes, _ := strconv.Atoi(env("VS_LARGE_BYTES"))
	large, err := cld.Upload.Upload(ctx, env("VS_LARGE_FILE"), uploader.UploadParams{PublicID: prefix + "/large"})
	if call("upload_large", err, large.Error.Message, func() string {
		return unless(large.PublicID == prefix+"/large" && large.Bytes == largeBytes, "not whole")
	}) {
		made[large.PublicID] = true
	}
	// Fixtures for the delete calls below, uploaded like the first.
	for _, fixture := range []struct{ name, tag string }{{"b", ""}, {"c", deleteTag}, {"sub/d", ""}, {"e", ""}} {
		params := uploader.UploadParams{PublicID: prefix + "/" + fixture.name}
		if fixture.tag != "" {
			params.Tags = api.CldAPIArray{fixture.tag}
		}
		result, err := cld.Upload.Upload(ctx, env("VS_UPLOAD_FILE"), params)
		if call("upload_"+strings.ReplaceAll(fixture.name, "/", "_"), err, result.Error.Message, func() string {
			return unless(result.PublicID == params.PublicID, "not the upload")
		}) {
			made[result.PublicID] = true
		}
	}

	// -- Admin API (the Go SDK has no resources_by_asset_ids)
	ping, err := cld.Admin.Ping(ctx)
	call("ping", err, ping.Error.Message, func() string { return unless(ping.Status == "ok", "status is not ok") })
	resource, err := cld.Admin.Asset(ctx, admin.AssetParams{PublicID: prefix + "/a"})
	call("resource", err, resource.Error.Message, func() string {
		return unless(resource.AssetID == assetID, "another asset")
	})
	listed, err := cld.Admin.Assets(ctx, admin.AssetsParams{DeliveryType: "upload", Prefix: prefix + "/", MaxResults: 10})
	call("resources", err, listed.Error.Message, func() string {
		ids := publicIDs(listed.Assets)
		outside := slices.ContainsFunc(ids, func(id string) bool { return !strings.HasPrefix(id, prefix+"/") })
		return unless(slices.Contains(ids, prefix+"/a") && !outside, "listing")
	})
	seen, message, err := walk(func(cursor string) (*admin.AssetsResult, error) {
		return cld.Admin.Assets(ctx, admin.AssetsParams{
			DeliveryType: "upload", Prefix: prefix + "/", MaxResults: 2, NextCursor: cursor,
		})
	})
	call("resources_paging", err, message, func() string {
		return unless(sameSet(seen, made), fmt.Sprintf("pages hold %v", seen))
	})
	byTag, err := cld.Admin.AssetsByTag(ctx, admin.AssetsByTagParams{Tag: tag})
	call("resources_by_tag", err, byTag.Error.Message, func() string {
		return unless(slices.Equal(publicIDs(byTag.Assets), []string{prefix + "/a"}), "listing")
	})
	destroyed, err := cld.Upload.Destroy(ctx, uploader.DestroyParams{PublicID: prefix + "/a"})
	call("destroy", err, destroyed.Error.Message, func() string { return unless(destroyed.Result == "ok", "not ok") })
	again, err := cld.Upload.Destroy(ctx, uploader.DestroyParams{PublicID: prefix + "/a"})
	call("destroy_not_found", err, again.Error.Message, func() string {
		return unless(again.Result == "not found", "result is not 'not found'")
	})
	deleted, err := cld.Admin.DeleteAssets(ctx, admin.DeleteAssetsParams{PublicIDs: api.CldAPIArray{prefix + "/b", prefix + "/e"}})
	call("delete_resources", err, deleted.Error.Message, func() string {
		return unless(deleted.Deleted[prefix+"/b"] == "deleted" && deleted.Deleted[prefix+"/e"] == "deleted", "not both deleted")
	})
	byTagDeleted, err := cld.Admin.DeleteAssetsByTag(ctx, admin.DeleteAssetsByTagParams{Tag: deleteTag})
	call("delete_resources_by_tag", err, byTagDeleted.Error.Message, func() string {
		return unless(byTagDeleted.Deleted[prefix+"/c"] == "deleted", "not deleted")
	})
	byPrefix, err := cld.Admin.DeleteAssetsByPrefix(ctx, admin.DeleteAssetsByPrefixParams{Prefix: api.CldAPIArray{prefix + "/sub/"}})
	call("delete_resources_by_prefix", err, byPrefix.Error.Message, func() string {
		only := len(byPrefix.Deleted) == 1 && byPrefix.Deleted[prefix+"/sub/d"] == "deleted"
		return unless(only, "deleted")
	})

	// -- One asset through an overwrite in another format, a rename and a tag: the same asset_id throughout
	identityTag := tag + "-identity"
	first, err := cld.Upload.Upload(ctx, env("VS_PROBE_FILE"), uploader.UploadParams{PublicID: prefix + "/f"})
	call("identity_upload_jpeg", err, first.Error.Message, func() string {
		return unless(first.AssetID != "" && first.Format == "jpg" && !first.Overwritten, "not a new asset")
	})
	kept := first.AssetID
	if kept == "" {
		kept = unknownAssetID
	}
	png, err := cld.Upload.Upload(ctx, env("VS_LARGE_FILE"), uploader.UploadParams{PublicID: prefix + "/f"})
	call("identity_upload_png", err, png.Error.Message, func() string {
		return unless(png.AssetID == kept && png.Format == "png" && png.Overwritten, "another asset")
	})
	renamed, err := cld.Upload.Rename(ctx, uploader.RenameParams{FromPublicID: prefix + "/f", ToPublicID: prefix + "/g"})
	renameError := ""
	if renamed != nil && renamed.Error != nil {
		renameError = fmt.Sprint(renamed.Error)
	}
	call("identity_rename", err, renameError, func() string {
		return unless(renamed.AssetID == kept && renamed.PublicID == prefix+"/g" && renamed.Format == "png", "another asset")
	})
	tagged, err := cld.Upload.AddTag(ctx, uploader.AddTagParams{Tag: identityTag, PublicIDs: []string{prefix + "/g"}})
	call("identity_add_tag", err, tagged.Error.Message, func() string {
		g := stored(cld, prefix+"/g")
		return unless(slices.Equal(tagged.PublicIDs, []string{prefix + "/g"}) && g.AssetID == kept &&
			slices.Equal(g.Tags, []string{identityTag}), "tag")
	})
	// The Go SDK has no resources_by_asset_ids: the asset by its id, one at a time.
	byKept, err := cld.Admin.AssetByAssetID(ctx, admin.AssetByAssetIDParams{AssetID: kept})
	call("identity_resource_by_asset_id", err, byKept.Error.Message, func() string {
		return unless(byKept.PublicID == prefix+"/g" && slices.Equal(byKept.Tags, []string{identityTag}), "not as tagged")
	})
	similar, err := cld.Admin.VisualSearch(ctx, admin.VisualSearchParams{ImageAssetID: kept})
	call("identity_visual_search_image_asset_id", err, similar.Error.Message, func() string {
		found := slices.ContainsFunc(similar.Assets, func(a api.BriefAssetResult) bool { return a.AssetID == kept })
		return unless(len(similar.Assets) > 0 && !found, "bad neighbours")
	})

	// -- Tags and context on stored assets, each change read back from the Admin API
	h, i := prefix+"/h", prefix+"/i"
	keepTag, saleTag, newTag := tag+"-keep", tag+"-sale", tag+"-new"
	// The SDK joins a CldAPIMap as k=v|k=v without escaping (a FIXME in api.CldAPIMap): a value holding
	// Cloudinary's separators is written escaped, as the Upload API reference says.
	sentContext := api.CldAPIMap{"caption": `Tom \| Jerry \= cat\=mouse`, "alt": "chaussure à talon, 靴"}
	wantContext := map[string]string{"caption": "Tom | Jerry = cat=mouse", "alt": "chaussure à talon, 靴"}
	explicitContext := map[string]string{"kind": "plain", "caption": "a|b"}
	updateContext := map[string]string{"kind": "été", "note": "x=y"}
	for _, fixture := range []struct{ name, tag string }{{"h", keepTag}, {"i", ""}} {
		params := uploader.UploadParams{PublicID: prefix + "/" + fixture.name}
		if fixture.tag != "" {
			params.Tags = api.CldAPIArray{fixture.tag}
		}
		result, err := cld.Upload.Upload(ctx, env("VS_UPLOAD_FILE"), params)
		call("upload_"+fixture.name, err, result.Error.Message, func() string {
			return unless(result.PublicID == params.PublicID, "not the upload")
		})
	}
	added, err := cld.Upload.AddTag(ctx, uploader.AddTagParams{Tag: saleTag, PublicIDs: []string{h, i}})
	call("add_tag", err, added.Error.Message, func() string {
		return unless(slices.Equal(added.PublicIDs, []string{h, i}) && slices.Equal(stored(cld, h).Tags, []string{keepTag, saleTag}) &&
			slices.Equal(stored(cld, i).Tags, []string{saleTag}), "tags")
	})
	removed, err := cld.Upload.RemoveTag(ctx, uploader.RemoveTagParams{Tag: keepTag, PublicIDs: []string{h}})
	call("remove_tag", err, removed.Error.Message, func() string {
		return unless(slices.Equal(removed.PublicIDs, []string{h}) && slices.Equal(stored(cld, h).Tags, []string{saleTag}), "tags")
	})
	replaced, err := cld.Upload.ReplaceTag(ctx, uploader.ReplaceTagParams{Tag: newTag, PublicIDs: []string{h, i}})
	call("replace_tag", err, replaced.Error.Message, func() string {
		return unless(slices.Equal(replaced.PublicIDs, []string{h, i}) && slices.Equal(stored(cld, h).Tags, []string{newTag}) &&
			slices.Equal(stored(cld, i).Tags, []string{newTag}), "tags")
	})
	cleared, err := cld.Upload.RemoveAllTags(ctx, uploader.RemoveAllTagsParams{PublicIDs: []string{i}})
	call("remove_all_tags", err, cleared.Error.Message, func() string {
		return unless(slices.Equal(cleared.PublicIDs, []string{i}) && slices.Equal(stored(cld, h).Tags, []string{newTag}) &&
			len(stored(cld, i).Tags) == 0, "tags")
	})
	withContext, err := cld.Upload.AddContext(ctx, uploader.AddContextParams{Context: sentContext, PublicIDs: api.CldAPIArray{h, i}})
	call("add_context", err, withContext.Error.Message, func() string {
		return unless(slices.Equal(withContext.PublicIDs, []string{h, i}) && maps.Equal(stored(cld, h).Context.Custom, wantContext) &&
			maps.Equal(stored(cld, i).Context.Custom, wantContext), "context")
	})
	withoutContext, err := cld.Upload.RemoveAllContext(ctx, uploader.RemoveAllContextParams{PublicIDs: api.CldAPIArray{i}})
	call("remove_all_context", err, withoutContext.Error.Message, func() string {
		return unless(slices.Equal(withoutContext.PublicIDs, []string{i}) && maps.Equal(stored(cld, h).Context.Custom, wantContext) &&
			len(stored(cld, i).Context.Custom) == 0, "context")
	})
	explicit, err := cld.Upload.Explicit(ctx, uploader.ExplicitParams{
		PublicID: h, Type: "upload", Tags: api.CldAPIArray{newTag, saleTag}, Context: api.CldAPIMap{"kind": "plain", "caption": `a\|b`},
	})
	call("explicit", err, explicit.Error.Message, func() string {
		after := stored(cld, h)
		return unless(slices.Equal(explicit.Tags, []string{newTag, saleTag}) && maps.Equal(custom(explicit.Context), explicitContext) &&
			slices.Equal(after.Tags, []string{newTag, saleTag}) && maps.Equal(after.Context.Custom, explicitContext), "tags and context")
	})
	updated, err := cld.Admin.UpdateAsset(ctx, admin.UpdateAssetParams{
		PublicID: i, Tags: api.CldAPIArray{saleTag}, Context: api.CldAPIMap{"kind": "été", "note": `x\=y`},
	})
	call("update", err, updated.Error.Message, func() string {
		after := stored(cld, i)
		return unless(slices.Equal(updated.Tags, []string{saleTag}) && maps.Equal(updated.Context.Custom, updateContext) &&
			slices.Equal(after.Tags, []string{saleTag}) && maps.Equal(after.Context.Custom, updateContext), "tags and context")
	})
	byIDs, err := cld.Admin.AssetsByIDs(ctx, admin.AssetsByIDsParams{PublicIDs: api.CldAPIArray{h, i}})
	call("resources_by_ids", err, byIDs.Error.Message, func() string {
		allSale := !slices.ContainsFunc(byIDs.Assets, func(a api.BriefAssetResult) bool { return !slices.Contains(a.Tags, saleTag) })
		return unless(slices.Equal(publicIDs(byIDs.Assets), []string{h, i}) && allSale, "listing")
	})
	byKey, err := cld.Admin.AssetsByContext(ctx, admin.AssetsByContextParams{Key: "kind"})
	call("resources_by_context", err, byKey.Error.Message, func() string {
		return unless(slices.Equal(publicIDs(byKey.Assets), []string{h, i}), "listing")
	})
	byValue, err := cld.Admin.AssetsByContext(ctx, admin.AssetsByContextParams{Key: "kind", Value: updateContext["kind"]})
	call("resources_by_context_value", err, byValue.Error.Message, func() string {
		return unless(slices.Equal(publicIDs(byValue.Assets), []string{i}), "listing")
	})

	// -- errors, as the SDK reports them
	_, err = wrong.Admin.VisualSearch(ctx, admin.VisualSearchParams{Text: "x"})
	refused("error_401_admin", http.StatusUnauthorized, err)
	_, err = wrong.Upload.Upload(ctx, env("VS_UPLOAD_FILE"), uploader.UploadParams{})
	refused("error_401_upload", http.StatusUnauthorized, err)
	_, err = cld.Admin.AssetByAssetID(ctx, admin.AssetByAssetIDParams{AssetID: unknownAssetID})
	refused("error_404", http.StatusNotFound, err)
	_, err = cld.Admin.VisualSearch(ctx, admin.VisualSearchParams{Text: "x", ImageAssetID: seed})
	refused("error_400", http.StatusBadRequest, err)

	if failed {
		os.Exit(1)
	}
}
