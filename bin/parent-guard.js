// Preloaded (--import) into a child started by launch.js. The launcher holds the other end of an IPC
// channel; when the channel closes, the command that started us is gone (killed, even by SIGKILL,
// or crashed), so we stop as on SIGTERM: the CLI drains with its grace period and exits, and a
// script without a SIGTERM handler ends at once.
if (process.channel) {
  // The channel only watches the parent: it must not keep this process alive by itself.
  process.channel.unref();
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}
