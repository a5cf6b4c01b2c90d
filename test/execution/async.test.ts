// The 'async' strategy passes the shared conformance suite.
import { createAsync } from "../../src/execution/async.js";
import { runConformance } from "./conformance.js";

runConformance({
  name: "async",
  create: createAsync,
  options: { threads: 4 },
  noIsolation: "handlers run on the replica's event loop: a crash or a stuck handler cannot be contained",
});
