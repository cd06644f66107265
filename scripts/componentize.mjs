// componentize-js called as a library (`jco componentize` 1.35 fails on any
// --wit path), with every WASI feature disabled so a component imports only
// forge's interfaces. Used by scripts/build-js-plugins.sh and, embedded,
// by `forge-host plugins build`; copied beside node_modules so its import
// resolves there.
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";
const [source, witPath, worldName, out] = process.argv.slice(2);
const { component } = await componentize(await readFile(source, "utf8"), {
  witPath,
  worldName,
  disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
});
await writeFile(out, component);
