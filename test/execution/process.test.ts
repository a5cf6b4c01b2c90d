// The 'process' strategy passes the shared conformance suite.
import { createProcess } from "../../src/execution/process.js";
import { runConformance } from "./conformance.js";

runConformance({ name: "process", create: createProcess, options: { threads: 1 } });
