// The 'single' strategy passes the shared conformance suite.
import { createSingle } from "../../src/execution/single.js";
import { runConformance } from "./conformance.js";

runConformance({
  name: "single",
  create: createSingle,
  noIsolation: "handlers run on the replica's event loop: a crash or a stuck handler cannot be contained",
});
