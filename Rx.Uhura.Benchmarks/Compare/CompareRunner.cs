using System.Diagnostics;
using System.Globalization;
using System.Reflection;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// The comparison run: every contender on every scenario, one after another in this process, a warm-up then the
/// repetitions, then a table (ratios to <c>raw</c> and <c>socket.io</c>) and optionally a JSON file. Progress goes to
/// stderr as it runs. Nothing here asserts a speed. Entry points: <c>Rx.Uhura.Benchmarks compare ...</c> and
/// <c>uhura bench compare ...</c>.
/// </summary>
public static class CompareRunner
{
    public const string Usage = """
        usage: compare [--quick] [--size tiny|quick|normal] [--json PATH] [--reps N]
                       [--contenders raw,rx-native,rx-uhura,socket.io,node-uhura] [--scenarios throughput,rtt,fanout,idle-memory,allocations]
                       [--node-dir DIR]
          --quick       quick sizes and 1 repetition (same as --size quick)
          --size        tiny is only for proving the harness works (the smoke test)
          --json PATH   also write the results as JSON to PATH ('-': JSON on stdout, the table on stderr)
          --node-dir    the folder of the Node contender scripts (default: bench/ next to Rx.Uhura.sln, found by walking
                        up from the current directory, then from the program's own folder)
        The Node contenders (socket.io, node-uhura) need node on PATH and `npm ci --no-audit --no-fund` run in bench/.
        """;

    /// <summary>Every contender name, in the table's order.</summary>
    public static IReadOnlyList<string> ContenderNames { get; } = ["raw", "rx-native", "rx-uhura", .. NodeScript.All.Select(s => s.Contender)];

    /// <summary>Parses <paramref name="args"/> and runs the comparison; returns the exit code (0 ok, 1 a contender failed, 2 bad usage).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        CompareOptions options;
        try
        {
            options = CompareOptions.Parse(args);
        }
        catch (ArgumentException ex)
        {
            await stderr.WriteLineAsync($"compare: {ex.Message}");
            await stderr.WriteLineAsync(Usage);
            return 2;
        }

        if (options.Help)
        {
            await stdout.WriteLineAsync(Usage);
            return 0;
        }

        return await RunAsync(options, stdout, stderr, "compare: ", cancellationToken);
    }

    /// <summary>
    /// Runs the comparison; returns the exit code: 0 ok (also when <paramref name="cancellationToken"/> interrupted it:
    /// the partial table is still written), 1 a contender failed or a requested contender cannot run here, 2 bad usage.
    /// Messages (not progress lines) on <paramref name="stderr"/> start with <paramref name="messagePrefix"/>.
    /// </summary>
    public static async Task<int> RunAsync(CompareOptions options, TextWriter stdout, TextWriter stderr, string messagePrefix, CancellationToken cancellationToken = default)
    {
        Task Say(string message) => stderr.WriteLineAsync(messagePrefix + message);

        if (options.NodeDirectory is { } nodeDirectory && !Directory.Exists(nodeDirectory))
        {
            await Say($"--node-dir {nodeDirectory}: no such directory");
            return 2;
        }

        if (IsDebugBuild(typeof(UhuraClient).Assembly) || IsDebugBuild(typeof(CompareRunner).Assembly))
        {
            await Say("warning: this is a Debug build (JIT optimizations off): the figures do not represent the library; build with -c Release");
        }

        var settings = options.Settings;
        var fdCap = Measure.MaxIdleConnections();
        if (settings.IdleConnections > fdCap && options.Scenarios.Contains(Scenario.IdleMemory))
        {
            await Say($"idle-memory capped at {fdCap} connections (file descriptor limit; both ends are in this process)");
            settings = settings with { IdleConnections = fdCap };
        }

        var benchDirectory = options.NodeDirectory is { } explicitDirectory
            ? Path.GetFullPath(explicitDirectory)
            : new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory }.Select(ExternalNodeContender.FindBenchDirectory).FirstOrDefault(d => d is not null);
        var requested = options.Contenders ?? ContenderNames;
        var contenders = AvailableContenders(benchDirectory).Where(c => requested.Contains(c.Name)).ToList();
        var report = new CompareReport(settings, options.SizeName);

        // A Node contender that cannot run here is an error when asked for by name, a note otherwise.
        foreach (var script in NodeScript.All.Where(s => requested.Contains(s.Contender)))
        {
            var contender = contenders.OfType<ExternalNodeContender>().FirstOrDefault(c => c.Script == script);
            var problem = contender is null
                ? (benchDirectory is null
                    ? $"no bench/ folder found (no Rx.Uhura.sln above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}); pass --node-dir DIR"
                    : $"{Path.Combine(benchDirectory, script.FileName)} not found")
                : contender.Problem();
            if (problem is null)
            {
                continue;
            }

            if (options.Contenders is not null)
            {
                await Say($"{script.Contender} cannot run: {problem}");
                return 1;
            }

            await Say($"{script.Contender} not run: {problem}");
            report.Skipped.Add((script.Contender, problem));
            contenders.RemoveAll(c => c.Name == script.Contender);
        }

        report.Contenders.AddRange(contenders.Select(c => c.Name));
        await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"[{DateTime.UtcNow:HH:mm:ss}] size {options.SizeName}, {settings.Repetitions} repetition(s); scenarios {string.Join(", ", options.Scenarios.Select(s => s.Name()))}; contenders {string.Join(", ", report.Contenders)}"));
        var failed = false;
        try
        {
            foreach (var scenario in options.Scenarios)
            {
                foreach (var contender in contenders)
                {
                    try
                    {
                        var (summary, missing) = await RunOneAsync(contender, scenario, settings, stderr, cancellationToken);
                        if (summary is not null)
                        {
                            report.Results.Add(summary);
                        }
                        else
                        {
                            report.Missing.Add((scenario, contender.Name, missing!));
                        }
                    }
                    catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                    {
                        failed = true;
                        var error = ex.GetType().Name + ": " + ex.Message;
                        report.Failures.Add((scenario, contender.Name, error));
                        await Say($"{scenario.Name()} / {contender.Name} failed: {error.ReplaceLineEndings(" ")}");
                    }
                }
            }
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            report.Interrupted = true;
            await Say("interrupted: the table has the results so far");
        }

        var jsonToStdout = options.JsonPath == "-";
        await report.WriteTableAsync(jsonToStdout ? stderr : stdout);
        if (jsonToStdout)
        {
            await report.WriteJsonAsync(stdout, CancellationToken.None);
        }
        else if (options.JsonPath is { } path)
        {
            await report.WriteJsonAsync(path, CancellationToken.None);
            await Say($"results written to {path}");
        }

        return failed ? 1 : 0;
    }

    /// <summary>The C# contenders, then the Node ones whose script is in <paramref name="benchDirectory"/>.</summary>
    public static IReadOnlyList<IContender> AvailableContenders(string? benchDirectory)
    {
        var list = new List<IContender>
        {
            new RawContender(),
            new UhuraContender("rx-native", WireProtocol.Native),
            new UhuraContender("rx-uhura", WireProtocol.NodeUhura),
        };
        foreach (var script in NodeScript.All)
        {
            if (ExternalNodeContender.TryCreate(script, benchDirectory) is { } external)
            {
                list.Add(external);
            }
        }

        return list;
    }

    private static bool IsDebugBuild(Assembly assembly) => assembly.GetCustomAttribute<DebuggableAttribute>()?.IsJITOptimizerDisabled == true;

    /// <summary>One contender on one scenario: the summary of its repetitions, or null and why there is no figure.</summary>
    private static async Task<(ScenarioSummary? Summary, string? Missing)> RunOneAsync(IContender contender, Scenario scenario, BenchSettings settings, TextWriter stderr, CancellationToken cancellationToken)
    {
        var label = $"{scenario.Name()} / {contender.Name}";
        Task Progress(string text) => stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"[{DateTime.UtcNow:HH:mm:ss}] {label}: {text}"));

        await Progress("warm-up");
        var warm = await contender.RunAsync(scenario, settings.ForWarmup(), cancellationToken);
        if (warm is null)
        {
            await Progress("not supported");
            return (null, "not supported by this contender");
        }

        if (!warm.HasFigures)
        {
            await Progress($"no figure in the warm-up: {warm.Note}");
            return (null, "warm-up: " + warm.Note);
        }

        var runs = new List<ScenarioResult>();
        for (var i = 0; i < settings.Repetitions; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            var result = await contender.RunAsync(scenario, settings, cancellationToken)
                ?? throw new InvalidOperationException("the contender stopped supporting the scenario after its warm-up");
            if (!result.HasFigures)
            {
                await Progress($"run {i + 1}/{settings.Repetitions}: no figure: {result.Note}");
                return (null, $"run {i + 1}/{settings.Repetitions}: {result.Note}");
            }

            runs.Add(result);
            await Progress(string.Create(CultureInfo.InvariantCulture,
                $"run {i + 1}/{settings.Repetitions}: {string.Join(", ", result.Metrics.Select(m => $"{m.Name} {m.Value:0.##} {m.Unit}"))} ({stopwatch.Elapsed.TotalSeconds:0.0} s)"));
        }

        var metrics = runs[0].Metrics.Select((m, index) =>
        {
            var values = runs.Select(r => r.Metrics[index].Value).Order().ToList();
            var median = values.Count % 2 == 1 ? values[values.Count / 2] : (values[values.Count / 2 - 1] + values[values.Count / 2]) / 2;
            return new MetricSummary(m.Name, m.Unit, median, values[0], values[^1], values.Count, m.HigherIsBetter);
        }).ToList();
        var notes = runs.Select(r => r.Note).Where(n => n is not null).Distinct().ToList();
        return (new ScenarioSummary(scenario, contender.Name, metrics, notes.Count == 0 ? null : string.Join("; ", notes)), null);
    }
}
