// Bundles the demo (src/main.tsx with React and the SDK) into dist/app.js and copies public/
// beside it: what the local gateway serves at `/`. Fails on any esbuild error or warning.
import { build } from "esbuild";
import { cpSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const result = await build({
  entryPoints: [join(here, "src/main.tsx")],
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  minify: true,
  sourcemap: "linked",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "linked",
  outfile: join(dist, "app.js"),
  logLevel: "warning",
  metafile: true,
});
if (result.warnings.length > 0) {
  console.error(`${result.warnings.length} esbuild warning(s)`);
  process.exit(1);
}
for (const name of ["index.html", "style.css"]) cpSync(join(here, "public", name), join(dist, name));
const app = result.metafile.outputs[Object.keys(result.metafile.outputs).find((o) => o.endsWith("app.js")) ?? ""];
console.log(`demo built: ${dist} (app.js ${((app?.bytes ?? 0) / 1024).toFixed(1)} KiB, React and both packages in it)`);
