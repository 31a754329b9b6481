import com.cloudinary.Api;
import com.cloudinary.Cloudinary;
import com.cloudinary.utils.ObjectUtils;
import java.io.File;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.cloudinary.json.JSONObject;

/**
 * Cloudinary's Java SDK against a Visual Search server: every call a user makes around visual_search.
 * Prints one JSON line per call ({"name", "ok", "status", "error"}) and exits 1 if any call had an
 * unexpected outcome. Run by tests/functional/test_client_java.py, which sets the environment (see
 * tests/clients/README.md). Plain http: the SDK takes any upload_prefix.
 */
public final class Calls {
    interface Run {
        Map<?, ?> call() throws Exception;
    }

    interface Check {
        void check(Map<?, ?> result);
    }

    private static final String UNKNOWN_ASSET_ID = "f".repeat(32);
    private static boolean failed = false;
    private static Cloudinary cloudinary;

    private static String env(String name) {
        String value = System.getenv(name);
        if (value == null) throw new IllegalStateException(name + " is not set");
        return value;
    }

    private static void report(String name, boolean ok, Integer status, String error) {
        failed |= !ok;
        JSONObject line = new JSONObject();
        line.put("name", name).put("ok", ok).put("status", status == null ? JSONObject.NULL : status);
        line.put("error", error == null ? JSONObject.NULL : error);
        System.out.println(line);
    }

    /** The status an Admin API exception stands for (the SDK maps each status to its own class). */
    private static Integer statusOf(Exception e) {
        for (Map.Entry<Integer, Class<? extends Exception>> entry : Api.CLOUDINARY_API_ERROR_CLASSES.entrySet()) {
            if (entry.getValue() == e.getClass()) return entry.getKey();
        }
        return null;
    }

    /** The Upload API answers errors in the result with `return_error`: {"error": {"message", "http_code"}}. */
    private static Map<?, ?> uploadError(Map<?, ?> result) {
        return result != null && result.get("error") instanceof Map ? (Map<?, ?>) result.get("error") : null;
    }

    private static void expect(boolean condition, String what) {
        if (!condition) throw new IllegalStateException("unexpected answer: " + what);
    }

    private static Map<?, ?> call(String name, Run run, Check check) {
        Map<?, ?> result;
        try {
            result = run.call();
        } catch (Exception e) {
            report(name, false, statusOf(e), e.getClass().getSimpleName() + ": " + e.getMessage());
            return null;
        }
        Map<?, ?> error = uploadError(result);
        if (error != null) {
            report(name, false, (Integer) error.get("http_code"), String.valueOf(error.get("message")));
            return null;
        }
        try {
            check.check(result);
            report(name, true, 200, null);
            return result;
        } catch (RuntimeException wrong) {
            String shown = String.valueOf(result);
            report(name, false, 200, wrong.getMessage() + ": " + shown.substring(0, Math.min(300, shown.length())));
            return null;
        }
    }

    private static void refused(String name, int status, Run run) {
        try {
            Map<?, ?> error = uploadError(run.call());
            if (error == null) {
                report(name, false, 200, "expected " + status + ", the call succeeded");
            } else {
                Integer seen = (Integer) error.get("http_code");
                report(name, Objects.equals(seen, status), seen, String.valueOf(error.get("message")));
            }
        } catch (Exception e) {
            Integer seen = statusOf(e);
            report(name, Objects.equals(seen, status), seen, e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    private static List<String> ids(Map<?, ?> result) {
        List<String> ids = new ArrayList<>();
        for (Object resource : (Collection<?>) result.get("resources")) ids.add((String) ((Map<?, ?>) resource).get("public_id"));
        return ids;
    }

    private static Map<String, Object> options(Object... pairs) {
        Map<String, Object> map = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) map.put((String) pairs[i], pairs[i + 1]);
        map.put("return_error", true); // Upload API: errors as a result carrying the status
        return map;
    }

    interface Page {
        Map<?, ?> get(String cursor) throws Exception;
    }

    /** Every page of a listing, following next_cursor (bounded, so a cursor that never ends fails). */
    private static Map<?, ?> walk(Page page) throws Exception {
        List<String> seen = new ArrayList<>();
        String cursor = null;
        for (int n = 0; n < 50; n++) {
            Map<?, ?> result = page.get(cursor);
            seen.addAll(ids(result));
            cursor = (String) result.get("next_cursor");
            if (cursor == null) return Map.of("ids", seen);
        }
        throw new IllegalStateException("more than 50 pages");
    }

    /** `walk`'s ids hold no repeat and exactly `expected`. */
    private static void sameSet(Map<?, ?> walked, Collection<String> expected) {
        List<?> seen = (List<?>) walked.get("ids");
        expect(!expected.isEmpty() && seen.size() == new HashSet<>(seen).size() && new HashSet<>(seen).equals(new HashSet<>(expected)),
                "pages hold " + seen);
    }

    private static Map<String, Object> page(String cursor, Object... pairs) {
        Map<String, Object> map = ObjectUtils.asMap(pairs);
        if (cursor != null) map.put("next_cursor", cursor);
        return map;
    }

    private static Map<?, ?> deleted(Map<?, ?> result) {
        return (Map<?, ?>) result.get("deleted");
    }

    /** A change, then the resources it touched as the Admin API shows them: {"answer", "after"}. */
    private static Map<?, ?> changed(Run change, String... publicIds) throws Exception {
        Map<?, ?> answer = change.call();
        if (uploadError(answer) != null) return answer;
        List<Map<?, ?>> after = new ArrayList<>();
        for (String publicId : publicIds) after.add(cloudinary.api().resource(publicId, new HashMap<>()));
        return Map.of("answer", answer, "after", after);
    }

    private static Map<?, ?> answer(Map<?, ?> changed) {
        return (Map<?, ?>) changed.get("answer");
    }

    private static Map<?, ?> after(Map<?, ?> changed, int n) {
        return (Map<?, ?>) ((List<?>) changed.get("after")).get(n);
    }

    private static List<?> tags(Map<?, ?> resource) {
        return (List<?>) resource.get("tags");
    }

    /** A resource's context.custom; null when it has no context. */
    private static Map<?, ?> custom(Map<?, ?> resource) {
        Map<?, ?> context = (Map<?, ?>) resource.get("context");
        return context == null ? null : (Map<?, ?>) context.get("custom");
    }

    public static void main(String[] args) {
        cloudinary = new Cloudinary(ObjectUtils.asMap(
                "cloud_name", env("VS_CLOUD_NAME"),
                "api_key", env("VS_API_KEY"),
                "api_secret", env("VS_API_SECRET"),
                "upload_prefix", env("VS_UPLOAD_PREFIX")));
        Api api = cloudinary.api();
        String prefix = env("VS_PUBLIC_ID_PREFIX");
        String tag = env("VS_TAG");
        String deleteTag = tag + "-delete";
        String probe = env("VS_PROBE_PUBLIC_ID");
        File upload = new File(env("VS_UPLOAD_FILE"));
        Map<String, Object> none = new HashMap<>();

        // -- visual_search: the Java SDK has no image_file
        Map<?, ?> byText = call("visual_search_text",
                () -> api.visualSearch(ObjectUtils.asMap("text", "a pair of shoes")),
                r -> expect(!ids(r).isEmpty(), "no resources"));
        call("visual_search_image_url",
                () -> api.visualSearch(ObjectUtils.asMap("image_url", env("VS_PROBE_URL"))),
                r -> expect(ids(r).get(0).equals(probe), "first hit is not " + probe));
        String seed = byText == null ? UNKNOWN_ASSET_ID
                : (String) ((Map<?, ?>) ((List<?>) byText.get("resources")).get(0)).get("asset_id");
        call("visual_search_image_asset_id",
                () -> api.visualSearch(ObjectUtils.asMap("image_asset_id", seed)),
                r -> expect(!ids(r).isEmpty() && !String.valueOf(r.get("resources")).contains(seed), "bad neighbours"));

        // The SDK passes every option to the query, next_cursor and max_results included.
        List<String> firstPage = byText == null ? List.of() : ids(byText);
        call("visual_search_paging",
                () -> walk(cursor -> api.visualSearch(page(cursor, "text", "a pair of shoes", "max_results", 7))),
                r -> sameSet(r, firstPage));

        // -- Upload API
        Set<String> made = new HashSet<>(); // public_ids this program uploaded successfully
        Map<?, ?> uploaded = call("upload",
                () -> cloudinary.uploader().upload(upload, options("public_id", prefix + "/a", "tags", List.of(tag, tag + "-2"))),
                r -> expect((prefix + "/a").equals(r.get("public_id")) && r.get("asset_id") != null
                        && ((Collection<?>) r.get("tags")).contains(tag)
                        && ((Collection<?>) r.get("tags")).contains(tag + "-2"), "not the upload"));
        String assetId = uploaded == null ? UNKNOWN_ASSET_ID : (String) uploaded.get("asset_id");
        if (uploaded != null) made.add(prefix + "/a");
        call("resource_by_asset_id",
                () -> api.resourceByAssetID(assetId, none),
                r -> expect((prefix + "/a").equals(r.get("public_id")), "another asset"));
        long largeBytes = Long.parseLong(env("VS_LARGE_BYTES"));
        Map<?, ?> large = call("upload_large",
                () -> cloudinary.uploader().uploadLarge(new File(env("VS_LARGE_FILE")),
                        options("resource_type", "image", "public_id", prefix + "/large"),
                        Integer.parseInt(env("VS_CHUNK_SIZE"))),
                r -> expect((prefix + "/large").equals(r.get("public_id"))
                        && ((Number) r.get("bytes")).longValue() == largeBytes, "not whole"));
        if (large != null) made.add(prefix + "/large");
        // Fixtures for the delete calls below, uploaded like the first.
        Map<String, String> fixtureIds = new HashMap<>();
        for (String[] fixture : new String[][] {{"b", ""}, {"c", deleteTag}, {"sub/d", ""}, {"e", ""}}) {
            Map<?, ?> fixtureUpload = call("upload_" + fixture[0].replace("/", "_"),
                    () -> cloudinary.uploader().upload(upload, options("public_id", prefix + "/" + fixture[0],
                            "tags", fixture[1].isEmpty() ? List.of() : List.of(fixture[1]))),
                    r -> expect((prefix + "/" + fixture[0]).equals(r.get("public_id")), "not the upload"));
            if (fixtureUpload != null) {
                made.add(prefix + "/" + fixture[0]);
                fixtureIds.put(fixture[0], (String) fixtureUpload.get("asset_id"));
            }
        }

        // -- Admin API
        call("ping", () -> api.ping(none), r -> expect("ok".equals(r.get("status")), "status is not ok"));
        call("resource",
                () -> api.resource(prefix + "/a", none),
                r -> expect(assetId.equals(r.get("asset_id")), "another asset"));
        call("resources",
                () -> api.resources(ObjectUtils.asMap("type", "upload", "prefix", prefix + "/", "max_results", 10)),
                r -> expect(ids(r).contains(prefix + "/a")
                        && ids(r).stream().allMatch(id -> id.startsWith(prefix + "/")), "listing"));
        call("resources_paging",
                () -> walk(cursor -> api.resources(page(cursor, "type", "upload", "prefix", prefix + "/", "max_results", 2))),
                r -> sameSet(r, made));
        call("resources_by_tag",
                () -> api.resourcesByTag(tag, none),
                r -> expect(ids(r).equals(List.of(prefix + "/a")), "listing"));
        call("resources_by_asset_ids",
                () -> api.resourcesByAssetIDs(List.of(assetId, fixtureIds.getOrDefault("b", UNKNOWN_ASSET_ID)), none),
                r -> expect(new HashSet<>(ids(r)).equals(Set.of(prefix + "/a", prefix + "/b")), "listing"));
        call("destroy",
                () -> cloudinary.uploader().destroy(prefix + "/a", options()),
                r -> expect("ok".equals(r.get("result")), "result is not ok"));
        call("destroy_not_found",
                () -> cloudinary.uploader().destroy(prefix + "/a", options()),
                r -> expect("not found".equals(r.get("result")), "result is not 'not found'"));
        call("delete_resources",
                () -> api.deleteResources(List.of(prefix + "/b", prefix + "/e"), none),
                r -> expect("deleted".equals(deleted(r).get(prefix + "/b"))
                        && "deleted".equals(deleted(r).get(prefix + "/e")), "not both deleted"));
        call("delete_resources_by_tag",
                () -> api.deleteResourcesByTag(deleteTag, none),
                r -> expect("deleted".equals(deleted(r).get(prefix + "/c")), "not deleted"));
        call("delete_resources_by_prefix",
                () -> api.deleteResourcesByPrefix(prefix + "/sub/", none),
                r -> expect(deleted(r).equals(Map.of(prefix + "/sub/d", "deleted")), "deleted"));

        // -- One asset through an overwrite in another format, a rename and a tag: the same asset_id throughout
        String identityTag = tag + "-identity";
        Map<?, ?> first = call("identity_upload_jpeg",
                () -> cloudinary.uploader().upload(new File(env("VS_PROBE_FILE")), options("public_id", prefix + "/f")),
                r -> expect(r.get("asset_id") != null && "jpg".equals(r.get("format")) && r.get("overwritten") == null,
                        "not a new asset"));
        String kept = first == null ? UNKNOWN_ASSET_ID : (String) first.get("asset_id");
        call("identity_upload_png",
                () -> cloudinary.uploader().upload(new File(env("VS_LARGE_FILE")), options("public_id", prefix + "/f")),
                r -> expect(kept.equals(r.get("asset_id")) && "png".equals(r.get("format"))
                        && Boolean.TRUE.equals(r.get("overwritten")), "another asset"));
        call("identity_rename",
                () -> cloudinary.uploader().rename(prefix + "/f", prefix + "/g", options()),
                r -> expect(kept.equals(r.get("asset_id")) && (prefix + "/g").equals(r.get("public_id"))
                        && "png".equals(r.get("format")), "another asset"));
        call("identity_add_tag",
                () -> changed(() -> cloudinary.uploader().addTag(identityTag, new String[] {prefix + "/g"}, options()), prefix + "/g"),
                r -> expect(answer(r).get("public_ids").equals(List.of(prefix + "/g")) && kept.equals(after(r, 0).get("asset_id"))
                        && tags(after(r, 0)).equals(List.of(identityTag)), "tag"));
        call("identity_resources_by_asset_ids",
                () -> api.resourcesByAssetIDs(List.of(kept), none),
                r -> expect(ids(r).equals(List.of(prefix + "/g"))
                        && tags((Map<?, ?>) ((List<?>) r.get("resources")).get(0)).equals(List.of(identityTag)), "not as tagged"));
        call("identity_visual_search_image_asset_id",
                () -> api.visualSearch(ObjectUtils.asMap("image_asset_id", kept)),
                r -> expect(!ids(r).isEmpty() && !String.valueOf(r.get("resources")).contains(kept), "bad neighbours"));

        // -- Tags and context on stored assets, each change read back from the Admin API
        String h = prefix + "/h", i = prefix + "/i";
        String keepTag = tag + "-keep", saleTag = tag + "-sale", newTag = tag + "-new";
        // Values holding Cloudinary's separators (the SDK escapes them as \| and \=) and non-ASCII text, written
        // as Unicode escapes: Java 17's javac reads a source in the locale's encoding.
        Map<String, String> context = Map.of("caption", "Tom | Jerry = cat=mouse", "alt", "chaussure \u00e0 talon, \u9774");
        Map<String, String> explicitContext = Map.of("kind", "plain", "caption", "a|b");
        Map<String, String> updateContext = Map.of("kind", "\u00e9t\u00e9", "note", "x=y");
        for (String[] fixture : new String[][] {{"h", keepTag}, {"i", ""}}) {
            call("upload_" + fixture[0],
                    () -> cloudinary.uploader().upload(upload, options("public_id", prefix + "/" + fixture[0],
                            "tags", fixture[1].isEmpty() ? List.of() : List.of(fixture[1]))),
                    r -> expect((prefix + "/" + fixture[0]).equals(r.get("public_id")), "not the upload"));
        }
        call("add_tag",
                () -> changed(() -> cloudinary.uploader().addTag(saleTag, new String[] {h, i}, options()), h, i),
                r -> expect(answer(r).get("public_ids").equals(List.of(h, i)) && tags(after(r, 0)).equals(List.of(keepTag, saleTag))
                        && tags(after(r, 1)).equals(List.of(saleTag)), "tags"));
        call("remove_tag",
                () -> changed(() -> cloudinary.uploader().removeTag(keepTag, new String[] {h}, options()), h),
                r -> expect(answer(r).get("public_ids").equals(List.of(h)) && tags(after(r, 0)).equals(List.of(saleTag)), "tags"));
        call("replace_tag",
                () -> changed(() -> cloudinary.uploader().replaceTag(newTag, new String[] {h, i}, options()), h, i),
                r -> expect(answer(r).get("public_ids").equals(List.of(h, i)) && tags(after(r, 0)).equals(List.of(newTag))
                        && tags(after(r, 1)).equals(List.of(newTag)), "tags"));
        call("remove_all_tags",
                () -> changed(() -> cloudinary.uploader().removeAllTags(new String[] {i}, options()), h, i),
                r -> expect(answer(r).get("public_ids").equals(List.of(i)) && tags(after(r, 0)).equals(List.of(newTag))
                        && tags(after(r, 1)).isEmpty(), "tags"));
        call("add_context",
                () -> changed(() -> cloudinary.uploader().addContext(context, new String[] {h, i}, options()), h, i),
                r -> expect(answer(r).get("public_ids").equals(List.of(h, i)) && context.equals(custom(after(r, 0)))
                        && context.equals(custom(after(r, 1))), "context"));
        call("remove_all_context",
                () -> changed(() -> cloudinary.uploader().removeAllContext(new String[] {i}, options()), h, i),
                r -> expect(answer(r).get("public_ids").equals(List.of(i)) && context.equals(custom(after(r, 0)))
                        && custom(after(r, 1)) == null, "context"));
        call("explicit",
                () -> changed(() -> cloudinary.uploader().explicit(h, options("type", "upload",
                        "tags", List.of(newTag, saleTag), "context", explicitContext)), h),
                r -> expect(List.of(answer(r), after(r, 0)).stream().allMatch(x -> tags(x).equals(List.of(newTag, saleTag))
                        && explicitContext.equals(custom(x))), "tags and context"));
        call("update",
                () -> changed(() -> api.update(i, ObjectUtils.asMap("tags", List.of(saleTag), "context", updateContext)), i),
                r -> expect(List.of(answer(r), after(r, 0)).stream().allMatch(x -> tags(x).equals(List.of(saleTag))
                        && updateContext.equals(custom(x))), "tags and context"));
        call("resources_by_ids",
                () -> api.resourcesByIds(List.of(h, i), none),
                r -> expect(new HashSet<>(ids(r)).equals(Set.of(h, i)) && ((List<?>) r.get("resources")).stream()
                        .allMatch(x -> tags((Map<?, ?>) x).contains(saleTag)), "listing"));
        call("resources_by_context",
                () -> api.resourcesByContext("kind", none),
                r -> expect(ids(r).equals(List.of(h, i)), "listing"));
        call("resources_by_context_value",
                () -> api.resourcesByContext("kind", updateContext.get("kind"), none),
                r -> expect(ids(r).equals(List.of(i)), "listing"));

        // -- errors, as the SDK reports them
        // Not a per-call api_secret: visualSearch would send it in the query string with the other options.
        Cloudinary stranger = new Cloudinary(ObjectUtils.asMap(
                "cloud_name", env("VS_CLOUD_NAME"),
                "api_key", env("VS_API_KEY"),
                "api_secret", "not-the-secret",
                "upload_prefix", env("VS_UPLOAD_PREFIX")));
        refused("error_401_admin", 401, () -> stranger.api().visualSearch(ObjectUtils.asMap("text", "x")));
        refused("error_401_upload", 401, () -> cloudinary.uploader().upload(upload, options("api_secret", "not-the-secret")));
        // Only images are indexed: a raw upload is refused.
        refused("error_400_upload_large_raw", 400, () -> cloudinary.uploader().uploadLargeRaw(upload, options()));
        refused("error_404", 404, () -> api.resourceByAssetID(UNKNOWN_ASSET_ID, none));
        refused("error_400", 400, () -> api.visualSearch(ObjectUtils.asMap("text", "x", "image_asset_id", seed)));
        System.exit(failed ? 1 : 0);
    }
}
