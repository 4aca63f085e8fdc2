using System.CommandLine;
using System.Runtime.InteropServices;
using Rx.Uhura.Cli;

// The `uhura` command: see CLI.md for the contract (JSON lines on stdout, one-line diagnostics on stderr, exit codes
// 0 success / 1 runtime failure / 2 bad usage, graceful close and exit 0 on SIGINT / SIGTERM).
var root = new RootCommand("Rx.Uhura command line: serve, send to and listen to uhura and socket-ipc endpoints (tcp://HOST:PORT, unix:///PATH); run a mesh node (native or masterless); watch a server's statistics; run the benchmarks. JSON lines on stdout when it is redirected (or with --json), a readable rendering on a terminal.")
{
    Common.Verbose,
    OutputMode.Json,
    OutputMode.NoColor,
    ServeCommand.Create(),
    SendCommand.Create(),
    ListenCommand.Create(),
    NodeCommand.Create(),
    StatsCommand.Create(),
    BenchCommand.Create(),
};

// No response files: an ARG_JSON could start with '@'.
var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parse.Errors.Count > 0)
{
    Common.Warn(parse.Errors[0].Message + " (see 'uhura --help')");
    return Exit.Usage;
}

// Records go out as JSON lines (redirected stdout, --json) or rendered for a person on a terminal.
var output = OutputMode.Select(parse);
if (output.Human)
{
    JsonLines.Stdout = output.CreateStdout();
}

using var stop = new CancellationTokenSource();
void OnSignal(PosixSignalContext context)
{
    // The first signal closes gracefully; a second one terminates at once.
    if (!stop.IsCancellationRequested)
    {
        context.Cancel = true;
        stop.Cancel();
    }
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
try
{
    return await parse.InvokeAsync(
        new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false },
        stop.Token);
}
catch (UsageException ex)
{
    Common.Warn(ex.Message);
    return Exit.Usage;
}
catch (CliFailureException ex)
{
    Common.Warn(ex.Message);
    return Exit.Failure;
}
catch (Exception ex)
{
    Common.Warn("unexpected error: " + Common.Describe(ex));
    return Exit.Failure;
}
