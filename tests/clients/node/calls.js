// Cloudinary's Node SDK against a Visual Search server: every call a user makes around visual_search.
// Prints one JSON line per call ({"name", "ok", "status", "error"}) and exits 1 if any call had an
// unexpected outcome. Run by tests/functional/test_client_node.py, which sets the environment (see
// tests/clients/README.md). The SDK speaks https: the server's self-signed certificate comes in through
// NODE_EXTRA_CA_CERTS.
"use strict";

const cloudinary = require("cloudinary").v2;

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

cloudinary.config({
  cloud_name: env("VS_CLOUD_NAME"),
  api_key: env("VS_API_KEY"),
  api_secret: env("VS_API_SECRET"),
  upload_prefix: env("VS_UPLOAD_PREFIX"),
});

const PREFIX = env("VS_PUBLIC_ID_PREFIX"); // every asset this program makes lives under it
const TAG = env("VS_TAG");
const DELETE_TAG = `${TAG}-delete`;
const WRONG = { api_secret: "not-the-secret" };
const UNKNOWN_ASSET_ID = "f".repeat(32);
const [IDENTITY_TAG, KEEP_TAG, SALE_TAG, NEW_TAG] = ["identity", "keep", "sale", "new"].map((t) => `${TAG}-${t}`);
// Values holding Cloudinary's separators (the SDK escapes them as \| and \=) and non-ASCII text.
const CONTEXT = { caption: "Tom | Jerry = cat=mouse", alt: "chaussure à talon, 靴" };
const EXPLICIT_CONTEXT = { kind: "plain", caption: "a|b" };
const UPDATE_CONTEXT = { kind: "été", note: "x=y" };

let failed = false;

function report(name, ok, status, error) {
  failed = failed || !ok;
  process.stdout.write(JSON.stringify({ name, ok, status, error }) + "\n");
}

// The SDK rejects with {error: {message, http_code}} (Admin API), {message, http_code} (Upload API)
// or a network Error.
function describe(rejection) {
  const error = (rejection && rejection.error) || rejection || {};
  return { status: error.http_code ?? null, message: String(error.message ?? error) };
}

function expect(condition, what) {
  if (!condition) throw new Error(`unexpected answer: ${what}`);
}

// A call that must succeed; `check` throws when the answer is not the expected one.
async function call(name, run, check) {
  let result;
  try {
    result = await run();
  } catch (rejection) {
    const { status, message } = describe(rejection);
    report(name, false, status, message);
    return undefined;
  }
  try {
    check(result);
    report(name, true, 200, null);
    return result;
  } catch (wrong) {
    report(name, false, 200, `${wrong.message}: ${JSON.stringify(result).slice(0, 300)}`);
    return undefined;
  }
}

// A call that must fail with `status`.
async function refused(name, status, run) {
  try {
    await run();
    report(name, false, 200, `expected ${status}, the call succeeded`);
  } catch (rejection) {
    const seen = describe(rejection);
    report(name, seen.status === status, seen.status, seen.message);
  }
}

// upload_large returns a stream, not a promise: its callback carries the last part's answer.
function uploadLarge(path, options) {
  return new Promise((resolve, reject) => {
    cloudinary.uploader.upload_large(path, options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

const ids = (result) => (result.resources || []).map((r) => r.public_id);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// A resource's context.custom is `expected`, whatever the order of its keys.
const hasContext = (resource, expected) =>
  same(Object.entries((resource.context || {}).custom || {}).sort(), Object.entries(expected).sort());

// A change, then the resources it touched as the Admin API shows them.
async function changed(change, publicIds) {
  const answer = await change();
  return { answer, after: await Promise.all(publicIds.map((id) => cloudinary.api.resource(id))) };
}

const made = new Set(); // public_ids this program uploaded successfully

// Every page of a listing, following next_cursor (bounded, so a cursor that never ends fails).
async function walk(list) {
  const seen = [];
  let cursor;
  for (let page = 0; page < 50; page++) {
    const result = await list(cursor);
    seen.push(...ids(result));
    cursor = result.next_cursor;
    if (!cursor) return seen;
  }
  throw new Error("more than 50 pages");
}

// No repeat, and exactly the (non-empty) expected set.
const sameSet = (seen, expected) =>
  expected.size > 0 &&
  seen.length === new Set(seen).size &&
  JSON.stringify([...seen].sort()) === JSON.stringify([...expected].sort());

async function main() {
  const probe = env("VS_PROBE_PUBLIC_ID");

  // -- visual_search, four ways
  const byText = await call(
    "visual_search_text",
    () => cloudinary.api.visual_search({ text: "a pair of shoes" }),
    (r) => expect(r.resources.length > 0, "no resources"),
  );
  await call(
    "visual_search_image_url",
    () => cloudinary.api.visual_search({ image_url: env("VS_PROBE_URL") }),
    (r) => expect(r.resources[0].public_id === probe, `first hit is not ${probe}`),
  );
  await call(
    "visual_search_image_file",
    () => cloudinary.api.visual_search({ image_file: env("VS_PROBE_FILE") }),
    (r) => expect(r.resources[0].public_id === probe, `first hit is not ${probe}`),
  );
  const seed = byText ? byText.resources[0].asset_id : UNKNOWN_ASSET_ID;
  await call(
    "visual_search_image_asset_id",
    () => cloudinary.api.visual_search({ image_asset_id: seed }),
    (r) => expect(r.resources.length > 0 && !r.resources.some((x) => x.asset_id === seed), "bad neighbours"),
  );

  // -- Upload API
  const uploaded = await call(
    "upload",
    () => cloudinary.uploader.upload(env("VS_UPLOAD_FILE"), { public_id: `${PREFIX}/a`, tags: [TAG, `${TAG}-2`] }),
    (r) =>
      expect(
        r.public_id === `${PREFIX}/a` && r.asset_id && r.tags.includes(TAG) && r.tags.includes(`${TAG}-2`),
        "not the upload",
      ),
  );
  if (uploaded) made.add(uploaded.public_id);
  const assetId = uploaded ? uploaded.asset_id : UNKNOWN_ASSET_ID;
  await call(
    "resource_by_asset_id",
    () => cloudinary.api.resource_by_asset_id(assetId),
    (r) => expect(r.public_id === `${PREFIX}/a`, "another asset"),
  );
  await call(
    "upload_large",
    () =>
      uploadLarge(env("VS_LARGE_FILE"), {
        resource_type: "image",
        public_id: `${PREFIX}/large`,
        chunk_size: Number(env("VS_CHUNK_SIZE")),
      }),
    (r) => expect(r.public_id === `${PREFIX}/large` && r.bytes === Number(env("VS_LARGE_BYTES")), "not whole"),
  ).then((r) => r && made.add(r.public_id));
  // Fixtures for the delete calls below, uploaded like the first.
  const fixtureIds = {};
  for (const [name, tags] of [["b", []], ["c", [DELETE_TAG]], ["sub/d", []], ["e", []]]) {
    await call(
      `upload_${name.replace("/", "_")}`,
      () => cloudinary.uploader.upload(env("VS_UPLOAD_FILE"), { public_id: `${PREFIX}/${name}`, tags }),
      (r) => expect(r.public_id === `${PREFIX}/${name}`, "not the upload"),
    ).then((r) => r && made.add(r.public_id) && (fixtureIds[name] = r.asset_id));
  }

  // -- Admin API
  await call("ping", () => cloudinary.api.ping(), (r) => expect(r.status === "ok", "status is not ok"));
  await call(
    "resource",
    () => cloudinary.api.resource(`${PREFIX}/a`),
    (r) => expect(r.asset_id === assetId, "another asset"),
  );
  await call(
    "resources",
    () => cloudinary.api.resources({ type: "upload", prefix: `${PREFIX}/`, max_results: 10 }),
    (r) => expect(ids(r).includes(`${PREFIX}/a`) && ids(r).every((id) => id.startsWith(`${PREFIX}/`)), "listing"),
  );
  await call(
    "resources_paging",
    () =>
      walk((cursor) =>
        cloudinary.api.resources({ type: "upload", prefix: `${PREFIX}/`, max_results: 2, next_cursor: cursor }),
      ),
    (seen) => expect(sameSet(seen, made), `pages hold ${JSON.stringify(seen)}`),
  );
  await call(
    "resources_by_tag",
    () => cloudinary.api.resources_by_tag(TAG),
    (r) => expect(JSON.stringify(ids(r)) === JSON.stringify([`${PREFIX}/a`]), "listing"),
  );
  await call(
    "resources_by_asset_ids",
    () => cloudinary.api.resources_by_asset_ids([assetId, fixtureIds.b ?? UNKNOWN_ASSET_ID]),
    (r) => expect(JSON.stringify(ids(r).sort()) === JSON.stringify([`${PREFIX}/a`, `${PREFIX}/b`]), "listing"),
  );
  await call(
    "destroy",
    () => cloudinary.uploader.destroy(`${PREFIX}/a`),
    (r) => expect(r.result === "ok", "result is not ok"),
  );
  await call(
    "destroy_not_found",
    () => cloudinary.uploader.destroy(`${PREFIX}/a`),
    (r) => expect(r.result === "not found", "result is not 'not found'"),
  );
  await call(
    "delete_resources",
    () => cloudinary.api.delete_resources([`${PREFIX}/b`, `${PREFIX}/e`]),
    (r) => expect(r.deleted[`${PREFIX}/b`] === "deleted" && r.deleted[`${PREFIX}/e`] === "deleted", "not both deleted"),
  );
  await call(
    "delete_resources_by_tag",
    () => cloudinary.api.delete_resources_by_tag(DELETE_TAG),
    (r) => expect(r.deleted[`${PREFIX}/c`] === "deleted", "not deleted"),
  );
  await call(
    "delete_resources_by_prefix",
    () => cloudinary.api.delete_resources_by_prefix(`${PREFIX}/sub/`),
    (r) => expect(JSON.stringify(r.deleted) === JSON.stringify({ [`${PREFIX}/sub/d`]: "deleted" }), "deleted"),
  );

  // -- One asset through an overwrite in another format, a rename and a tag: the same asset_id throughout
  const first = await call(
    "identity_upload_jpeg",
    () => cloudinary.uploader.upload(env("VS_PROBE_FILE"), { public_id: `${PREFIX}/f` }),
    (r) => expect(r.asset_id && r.format === "jpg" && !r.overwritten, "not a new asset"),
  );
  const kept = first ? first.asset_id : UNKNOWN_ASSET_ID;
  await call(
    "identity_upload_png",
    () => cloudinary.uploader.upload(env("VS_LARGE_FILE"), { public_id: `${PREFIX}/f` }),
    (r) => expect(r.asset_id === kept && r.format === "png" && r.overwritten === true, "another asset"),
  );
  await call(
    "identity_rename",
    () => cloudinary.uploader.rename(`${PREFIX}/f`, `${PREFIX}/g`),
    (r) => expect(r.asset_id === kept && r.public_id === `${PREFIX}/g` && r.format === "png", "another asset"),
  );
  await call(
    "identity_add_tag",
    () => changed(() => cloudinary.uploader.add_tag(IDENTITY_TAG, [`${PREFIX}/g`]), [`${PREFIX}/g`]),
    ({ answer, after: [g] }) =>
      expect(same(answer.public_ids, [`${PREFIX}/g`]) && g.asset_id === kept && same(g.tags, [IDENTITY_TAG]), "tag"),
  );
  await call(
    "identity_resources_by_asset_ids",
    () => cloudinary.api.resources_by_asset_ids([kept]),
    (r) => expect(same(ids(r), [`${PREFIX}/g`]) && same(r.resources[0].tags, [IDENTITY_TAG]), "not as tagged"),
  );
  await call(
    "identity_visual_search_image_asset_id",
    () => cloudinary.api.visual_search({ image_asset_id: kept }),
    (r) => expect(r.resources.length > 0 && !r.resources.some((x) => x.asset_id === kept), "bad neighbours"),
  );

  // -- Tags and context on stored assets, each change read back from the Admin API
  const [h, i] = [`${PREFIX}/h`, `${PREFIX}/i`];
  for (const [name, tags] of [["h", [KEEP_TAG]], ["i", []]]) {
    await call(
      `upload_${name}`,
      () => cloudinary.uploader.upload(env("VS_UPLOAD_FILE"), { public_id: `${PREFIX}/${name}`, tags }),
      (r) => expect(r.public_id === `${PREFIX}/${name}`, "not the upload"),
    );
  }
  await call(
    "add_tag",
    () => changed(() => cloudinary.uploader.add_tag(SALE_TAG, [h, i]), [h, i]),
    ({ answer, after: [rh, ri] }) =>
      expect(
        same(answer.public_ids, [h, i]) && same(rh.tags, [KEEP_TAG, SALE_TAG]) && same(ri.tags, [SALE_TAG]),
        "tags",
      ),
  );
  await call(
    "remove_tag",
    () => changed(() => cloudinary.uploader.remove_tag(KEEP_TAG, [h]), [h]),
    ({ answer, after: [rh] }) => expect(same(answer.public_ids, [h]) && same(rh.tags, [SALE_TAG]), "tags"),
  );
  await call(
    "replace_tag",
    () => changed(() => cloudinary.uploader.replace_tag(NEW_TAG, [h, i]), [h, i]),
    ({ answer, after: [rh, ri] }) =>
      expect(same(answer.public_ids, [h, i]) && same(rh.tags, [NEW_TAG]) && same(ri.tags, [NEW_TAG]), "tags"),
  );
  await call(
    "remove_all_tags",
    () => changed(() => cloudinary.uploader.remove_all_tags([i]), [h, i]),
    ({ answer, after: [rh, ri] }) =>
      expect(same(answer.public_ids, [i]) && same(rh.tags, [NEW_TAG]) && same(ri.tags, []), "tags"),
  );
  await call(
    "add_context",
    () => changed(() => cloudinary.uploader.add_context(CONTEXT, [h, i]), [h, i]),
    ({ answer, after: [rh, ri] }) =>
      expect(same(answer.public_ids, [h, i]) && hasContext(rh, CONTEXT) && hasContext(ri, CONTEXT), "context"),
  );
  await call(
    "remove_all_context",
    () => changed(() => cloudinary.uploader.remove_all_context([i]), [h, i]),
    ({ answer, after: [rh, ri] }) =>
      expect(same(answer.public_ids, [i]) && hasContext(rh, CONTEXT) && ri.context === undefined, "context"),
  );
  await call(
    "explicit",
    () =>
      changed(
        () => cloudinary.uploader.explicit(h, { type: "upload", tags: [NEW_TAG, SALE_TAG], context: EXPLICIT_CONTEXT }),
        [h],
      ),
    ({ answer, after: [rh] }) =>
      expect(
        [answer, rh].every((r) => same(r.tags, [NEW_TAG, SALE_TAG]) && hasContext(r, EXPLICIT_CONTEXT)),
        "tags and context",
      ),
  );
  await call(
    "update",
    () => changed(() => cloudinary.api.update(i, { tags: [SALE_TAG], context: UPDATE_CONTEXT }), [i]),
    ({ answer, after: [ri] }) =>
      expect([answer, ri].every((r) => same(r.tags, [SALE_TAG]) && hasContext(r, UPDATE_CONTEXT)), "tags and context"),
  );
  await call(
    "resources_by_ids",
    () => cloudinary.api.resources_by_ids([h, i]),
    (r) => expect(same(ids(r).sort(), [h, i]) && r.resources.every((x) => x.tags.includes(SALE_TAG)), "listing"),
  );
  await call(
    "resources_by_context",
    () => cloudinary.api.resources_by_context("kind"),
    (r) => expect(same(ids(r), [h, i]), "listing"),
  );
  await call(
    "resources_by_context_value",
    () => cloudinary.api.resources_by_context("kind", UPDATE_CONTEXT.kind),
    (r) => expect(same(ids(r), [i]), "listing"),
  );

  // -- errors, as the SDK reports them
  await refused("error_401_admin", 401, () => cloudinary.api.visual_search({ text: "x" }, WRONG));
  await refused("error_401_upload", 401, () => cloudinary.uploader.upload(env("VS_UPLOAD_FILE"), WRONG));
  // upload_large's default resource type is raw: only images are indexed.
  await refused("error_400_upload_large_raw", 400, () => uploadLarge(env("VS_UPLOAD_FILE"), {}));
  await refused("error_404", 404, () => cloudinary.api.resource_by_asset_id(UNKNOWN_ASSET_ID));
  await refused("error_400", 400, () => cloudinary.api.visual_search({ text: "x", image_asset_id: seed }));
}

main().then(
  () => process.exit(failed ? 1 : 0),
  (crash) => {
    report("program", false, null, String((crash && crash.stack) || crash));
    process.exit(2);
  },
);
