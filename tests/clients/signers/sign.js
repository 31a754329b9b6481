// Cloudinary's Node SDK signing each case read from stdin; see tests/functional/test_client_signatures.py.
// A line: "<version> <algorithm> <name hex>:<value hex>,..." (UTF-8 as hex); out: one hex signature a line.
const cloudinary = require("cloudinary").v2;

const text = (hex) => Buffer.from(hex, "hex").toString("utf8");
const input = require("fs").readFileSync(0, "utf8").trim().split("\n");
for (const line of input) {
  const [version, algorithm, pairs] = line.split(" ");
  const params = Object.fromEntries(pairs.split(",").map((pair) => pair.split(":").map(text)));
  console.log(cloudinary.utils.api_sign_request(params, process.env.VS_API_SECRET, algorithm, Number(version)));
}
