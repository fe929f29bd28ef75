// AWS Signature Version 4 for one request, with node:crypto only: how a portal backend
// written in Node signs a server API call (docs/server-api.md). Header form, service
// execute-api; the path must already be percent-encoded as sent.
import { createHash, createHmac } from "node:crypto";

const sha256 = (data) => createHash("sha256").update(data).digest("hex");
const hmac = (key, data) => createHmac("sha256", key).update(data).digest();
// RFC 3986: everything but the unreserved characters (and "/" in a path).
const encode = (text, keepSlash) =>
  [...Buffer.from(text)]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === "/") ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
    })
    .join("");

/** The headers to add to `method url` with `body`: x-amz-date and Authorization. */
export function sign({ method, url, headers = {}, body = "", accessKeyId, secretAccessKey, region, service = "execute-api", now = new Date() }) {
  const { host, pathname, searchParams } = new URL(url);
  const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const all = { ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v).trim()])), host, "x-amz-date": amzDate };
  const names = Object.keys(all).sort();
  const query = [...searchParams].map(([k, v]) => [encode(k), encode(v)]).sort().map(([k, v]) => `${k}=${v}`).join("&");
  const canonical = [method, encode(pathname, true), query, names.map((n) => `${n}:${all[n]}\n`).join(""), names.join(";"), sha256(body)].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  let key = `AWS4${secretAccessKey}`;
  for (const part of [day, region, service, "aws4_request"]) key = hmac(key, part);
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  return {
    "x-amz-date": amzDate,
    authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
}
