/** The `anyserve` command. */
import { Command } from "commander";
import { VERSION } from "../version.js";
import { registerApiServerCommand } from "./api-server.js";
import { registerStartCommand } from "./start.js";
import { registerK8sCommand } from "./k8s.js";
import { registerServeCommand, registerUpCommand } from "./up.js";
import { registerApplyCommands } from "./apply.js";
import { registerStatusCommand } from "./status.js";
import { registerCheckAppCommand } from "./check-app.js";

const program = new Command()
  .name("anyserve")
  .description("Capability-routed serving for models and services (Open Inference Protocol v2 over REST and gRPC)")
  .version(VERSION);

registerApiServerCommand(program);
registerStartCommand(program);
registerUpCommand(program);
registerK8sCommand(program);
registerServeCommand(program);
registerApplyCommands(program);
registerStatusCommand(program);
registerCheckAppCommand(program);

// A reader that went away (`anyserve up … | head`) must not crash a supervisor of processes.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });
}

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`anyserve: ${(err as Error).message}\n`);
  process.exit(1);
});
