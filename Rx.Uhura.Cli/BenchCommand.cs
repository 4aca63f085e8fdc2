using System.CommandLine;
using Rx.Uhura.Benchmarks.Compare;

namespace Rx.Uhura.Cli;

/// <summary>
/// <c>uhura bench compare [--quick] [--size tiny|quick|normal] [--json PATH] [--reps N] [--contenders LIST]
/// [--scenarios LIST] [--node-dir DIR]</c>: the comparison run of BENCHMARKS.md, the same as
/// <c>Rx.Uhura.Benchmarks compare</c> (<see cref="CompareRunner"/>). Progress lines go to stderr while it runs, the
/// table to stdout at the end, the JSON to PATH (<c>--json -</c>: the JSON on stdout as one line, the table on stderr).
/// </summary>
/// <remarks>
/// Exit codes: 0 done (also when SIGINT / SIGTERM stopped it: the partial table is written), 1 a contender failed or a
/// contender asked for cannot run here (e.g. bench/node_modules missing: the message says to run npm ci), 2 bad usage.
/// </remarks>
internal static class BenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick")
        {
            Description = "Quick sizes and 1 repetition (the same as --size quick).",
        };
        var size = new Option<string?>("--size")
        {
            Description = "The sizes: normal (the default; BENCHMARKS.md), quick, or tiny (only proves the harness works).",
            HelpName = "tiny|quick|normal",
        };
        var json = new Option<string?>("--json")
        {
            Description = "Also write the results as JSON to PATH ('-': the JSON on stdout as one line, the table on stderr).",
            HelpName = "PATH",
        };
        var reps = new Option<int?>("--reps")
        {
            Description = "Measured repetitions per scenario and contender, after one warm-up (default: 3, 1 for quick and tiny).",
            HelpName = "N",
        };
        var contenders = new Option<string?>("--contenders")
        {
            Description = $"Comma-separated, among {string.Join(",", CompareRunner.ContenderNames)} (default: every one that can run here).",
            HelpName = "LIST",
        };
        var scenarios = new Option<string?>("--scenarios")
        {
            Description = $"Comma-separated, among {string.Join(",", Scenarios.All.Select(s => s.Name()))} (default: all).",
            HelpName = "LIST",
        };
        var nodeDir = new Option<string?>("--node-dir")
        {
            Description = "The folder of the Node contender scripts (default: bench/ next to Rx.Uhura.sln, found by walking up from the current directory, then from this program's folder). Run `npm ci --no-audit --no-fund` there first.",
            HelpName = "DIR",
        };

        var compare = new Command("compare", "Run every contender (raw, rx-native, rx-uhura, socket.io, node-uhura) on every scenario side by side and print the table.")
        {
            quick, size, json, reps, contenders, scenarios, nodeDir,
        };
        compare.SetAction((parse, cancellationToken) => RunAsync(
            Options(
                parse.GetValue(quick),
                parse.GetValue(size),
                parse.GetValue(json),
                parse.GetValue(reps),
                parse.GetValue(contenders),
                parse.GetValue(scenarios),
                parse.GetValue(nodeDir)),
            cancellationToken));

        return new Command("bench", "Benchmarks (BENCHMARKS.md).") { compare };
    }

    private static CompareOptions Options(bool quick, string? size, string? json, int? reps, string? contenders, string? scenarios, string? nodeDir)
    {
        try
        {
            if (quick && size is not null && size != "quick")
            {
                throw new UsageException($"--quick and --size {size} disagree.");
            }

            var sizeName = size ?? (quick ? "quick" : "normal");
            var options = new CompareOptions
            {
                SizeName = sizeName,
                Settings = CompareOptions.SettingsFor(sizeName),
                JsonPath = json,
                Contenders = contenders is null ? null : CompareOptions.ParseContenders(contenders),
                Scenarios = scenarios is null ? Scenarios.All : CompareOptions.ParseScenarios(scenarios),
                NodeDirectory = nodeDir,
            };
            return reps switch
            {
                null => options,
                > 0 => options.WithRepetitions(reps.Value),
                _ => throw new UsageException($"--reps must be at least 1 (got {reps})."),
            };
        }
        catch (ArgumentException ex)
        {
            throw new UsageException(ex.Message + ".");
        }
    }

    private static Task<int> RunAsync(CompareOptions options, CancellationToken stop) =>
        CompareRunner.RunAsync(options, Console.Out, Console.Error, "uhura: ", stop);
}
