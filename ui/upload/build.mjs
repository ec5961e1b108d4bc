// Build the upload page's script and stylesheet into the Python package:
//
//   npm ci && node build.mjs        (or `make ui` from the repository root)
//
// Writes src/filegate/web/static/upload/assets/upload.<hash>.{js,css} (content-hashed, so they
// can be cached for ever), manifest.json (which names the page links, the bundled packages and
// the sha256 of this directory's sources, which a unit test compares to catch a stale build)
// and THIRD_PARTY_LICENSES.txt. The same sources and lock file give the same bytes.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, "..", "..", "src", "filegate", "web", "static", "upload");
const ASSETS = join(OUT, "assets");
// What the staleness check hashes: everything that decides the built bytes.
const SOURCES = ["package.json", "package-lock.json", "build.mjs", "src"];

function filesUnder(path) {
  const full = join(HERE, path);
  try {
    return readdirSync(full, { withFileTypes: true })
      .flatMap((entry) => filesUnder(join(path, entry.name)))
      .sort();
  } catch {
    return [path];
  }
}

export function sourceDigest() {
  const digest = createHash("sha256");
  for (const path of SOURCES.flatMap(filesUnder).sort()) {
    digest.update(`${path.split("\\").join("/")}\0`);
    digest.update(readFileSync(join(HERE, path)));
    digest.update("\0");
  }
  return digest.digest("hex");
}

async function bundle(entry) {
  const result = await esbuild.build({
    entryPoints: [join(HERE, "src", entry)],
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2020"],
    platform: "browser",
    legalComments: "none", // the licences go to THIRD_PARTY_LICENSES.txt, once
    metafile: true,
    write: false,
    outdir: "out",
  });
  return { bytes: result.outputFiles[0].contents, inputs: Object.keys(result.metafile.inputs) };
}

function hashedName(stem, extension, bytes) {
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 12);
  return `${stem}.${hash}.${extension}`;
}

/** The npm packages whose code is in the bundle: name -> {version, license, text}. */
function bundledPackages(inputs) {
  const packages = new Map();
  for (const input of inputs) {
    const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (!match || packages.has(match[1])) continue;
    const root = join(HERE, "node_modules", match[1]);
    const meta = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    const licence = readdirSync(root).find((name) => /^(licen[cs]e|copying)/i.test(name));
    const text = licence ? readFileSync(join(root, licence), "utf8").trim() : meta.license;
    packages.set(match[1], { version: meta.version, license: meta.license, text });
  }
  return new Map([...packages].sort(([a], [b]) => a.localeCompare(b)));
}

const script = await bundle("main.js");
const style = await bundle("style.css");
const names = {
  script: hashedName("upload", "js", script.bytes),
  stylesheet: hashedName("upload", "css", style.bytes),
};
rmSync(ASSETS, { recursive: true, force: true });
mkdirSync(ASSETS, { recursive: true });
writeFileSync(join(ASSETS, names.script), script.bytes);
writeFileSync(join(ASSETS, names.stylesheet), style.bytes);

const packages = bundledPackages(script.inputs);
const manifest = {
  script: names.script,
  stylesheet: names.stylesheet,
  sizes: { [names.script]: script.bytes.length, [names.stylesheet]: style.bytes.length },
  source_sha256: sourceDigest(),
  esbuild: esbuild.version,
  bundled: Object.fromEntries([...packages].map(([name, p]) => [name, p.version])),
};
writeFileSync(join(OUT, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
const notices = [...packages].map(
  ([name, p]) => `${name} ${p.version} (${p.license})\n\n${p.text}\n`,
);
writeFileSync(
  join(OUT, "THIRD_PARTY_LICENSES.txt"),
  `Third-party code bundled into ${names.script}:\n\n${notices.join(`\n${"-".repeat(72)}\n\n`)}`,
);
for (const name of [names.script, names.stylesheet]) {
  console.log(`${relative(process.cwd(), join(ASSETS, name))}: ${manifest.sizes[name]} bytes`);
}
