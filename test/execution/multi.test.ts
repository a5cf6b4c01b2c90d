// The 'multi' strategy passes the shared conformance suite.
import { createMulti } from "../../src/execution/multi.js";
import { runConformance } from "./conformance.js";

runConformance({ name: "multi", create: createMulti, options: { threads: 1 } });
