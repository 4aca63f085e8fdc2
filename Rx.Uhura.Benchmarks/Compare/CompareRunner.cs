using System.Diagnostics;
using System.Globalization;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// The comparison run: every contender on every scenario, one after another in this process, a warm-up then the
/// repetitions, then a table on stdout (ratios to <c>raw</c> and <c>socket.io</c>) and optionally a JSON file.
/// Progress goes to stderr. Nothing here asserts a speed.
/// </summary>
public static class CompareRunner
{
    public const string Usage = """
        usage: compare [--quick] [--size tiny|quick|normal] [--json PATH] [--reps N]
                       [--contenders raw,rx-native,rx-uhura,socket.io,node-uhura] [--scenarios throughput,rtt,fanout,idle-memory,allocations]
          --quick     quick sizes and 1 repetition (same as --size quick)
          --size      tiny is only for proving the harness works (the smoke test)
        Node contenders (socket.io, node-uhura) run only when bench/<name>.js exists in the repository.
        """;

    /// <summary>Runs the comparison; returns the process exit code (0 ok, 1 a contender failed, 2 bad usage).</summary>
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

        var settings = options.Settings;
        var fdCap = Measure.MaxIdleConnections();
        if (settings.IdleConnections > fdCap)
        {
            await stderr.WriteLineAsync($"compare: idle-memory capped at {fdCap} connections (file descriptor limit; both ends are in this process)");
            settings = settings with { IdleConnections = fdCap };
        }

        var contenders = AvailableContenders(AppContext.BaseDirectory, Directory.GetCurrentDirectory())
            .Where(c => options.Contenders is null || options.Contenders.Contains(c.Name))
            .ToList();
        if (options.Contenders is not null)
        {
            foreach (var missing in options.Contenders.Where(n => contenders.All(c => c.Name != n)))
            {
                await stderr.WriteLineAsync($"compare: contender '{missing}' is not available (unknown, or its bench/ script is missing)");
            }
        }

        var report = new CompareReport(settings, options.SizeName);
        var failed = false;
        foreach (var scenario in options.Scenarios)
        {
            foreach (var contender in contenders)
            {
                try
                {
                    var summary = await RunOneAsync(contender, scenario, settings, stderr, cancellationToken);
                    if (summary is null)
                    {
                        report.Unsupported.Add((scenario, contender.Name));
                    }
                    else
                    {
                        report.Results.Add(summary);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    failed = true;
                    report.Failures.Add((scenario, contender.Name, ex.GetType().Name + ": " + ex.Message));
                    await stderr.WriteLineAsync($"compare: {contender.Name} {scenario.Name()} failed: {ex}");
                }
            }
        }

        await report.WriteTableAsync(stdout);
        if (options.JsonPath is { } path)
        {
            await report.WriteJsonAsync(path, cancellationToken);
            await stderr.WriteLineAsync($"compare: results written to {path}");
        }

        return failed ? 1 : 0;
    }

    /// <summary>The C# contenders, then the Node ones whose script exists.</summary>
    public static IReadOnlyList<IContender> AvailableContenders(params string[] searchFrom)
    {
        var list = new List<IContender>
        {
            new RawContender(),
            new UhuraContender("rx-native", WireProtocol.Native),
            new UhuraContender("rx-uhura", WireProtocol.NodeUhura),
        };
        var bench = searchFrom.Select(ExternalNodeContender.FindBenchDirectory).FirstOrDefault(d => d is not null);
        foreach (var (name, script) in new[] { ("socket.io", "socketio.js"), ("node-uhura", "node-uhura.js") })
        {
            if (ExternalNodeContender.TryCreate(name, bench, script) is { } external)
            {
                list.Add(external);
            }
        }

        return list;
    }

    private static async Task<ScenarioSummary?> RunOneAsync(IContender contender, Scenario scenario, BenchSettings settings, TextWriter stderr, CancellationToken cancellationToken)
    {
        await stderr.WriteLineAsync($"[{DateTime.UtcNow:HH:mm:ss}] {scenario.Name()} / {contender.Name}: warm-up");
        var warm = await contender.RunAsync(scenario, settings.ForWarmup(), cancellationToken);
        if (warm is null)
        {
            await stderr.WriteLineAsync($"[{DateTime.UtcNow:HH:mm:ss}] {scenario.Name()} / {contender.Name}: not supported");
            return null;
        }

        var runs = new List<ScenarioResult>();
        for (var i = 0; i < settings.Repetitions; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            var result = await contender.RunAsync(scenario, settings, cancellationToken)
                ?? throw new InvalidOperationException("the contender stopped supporting the scenario after its warm-up");
            runs.Add(result);
            await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"[{DateTime.UtcNow:HH:mm:ss}] {scenario.Name()} / {contender.Name}: run {i + 1}/{settings.Repetitions}: {string.Join(", ", result.Metrics.Select(m => $"{m.Name} {m.Value:0.##} {m.Unit}"))} ({stopwatch.Elapsed.TotalSeconds:0.0} s)"));
        }

        var metrics = runs[0].Metrics.Select((m, index) =>
        {
            var values = runs.Select(r => r.Metrics[index].Value).Order().ToList();
            var median = values.Count % 2 == 1 ? values[values.Count / 2] : (values[values.Count / 2 - 1] + values[values.Count / 2]) / 2;
            return new MetricSummary(m.Name, m.Unit, median, values[0], values[^1], values.Count, m.HigherIsBetter);
        }).ToList();
        return new ScenarioSummary(scenario, contender.Name, metrics, runs[0].Note);
    }
}

/// <summary>Parsed command line of <c>compare</c>.</summary>
internal sealed record CompareOptions
{
    public BenchSettings Settings { get; init; } = BenchSettings.Normal;

    public string SizeName { get; init; } = "normal";

    public string? JsonPath { get; init; }

    public IReadOnlyList<string>? Contenders { get; init; }

    public IReadOnlyList<Scenario> Scenarios { get; init; } = Compare.Scenarios.All;

    public bool Help { get; init; }

    public static CompareOptions Parse(string[] args)
    {
        var options = new CompareOptions();
        int? reps = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--quick":
                    options = options with { Settings = BenchSettings.Quick, SizeName = "quick" };
                    break;
                case "--size":
                    var size = Value();
                    options = options with
                    {
                        SizeName = size,
                        Settings = size switch
                        {
                            "tiny" => BenchSettings.Tiny,
                            "quick" => BenchSettings.Quick,
                            "normal" => BenchSettings.Normal,
                            _ => throw new ArgumentException($"unknown size '{size}'"),
                        },
                    };
                    break;
                case "--json":
                    options = options with { JsonPath = Value() };
                    break;
                case "--reps":
                    reps = int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var r) && r > 0 ? r : throw new ArgumentException("--reps needs a positive integer");
                    break;
                case "--contenders":
                    options = options with { Contenders = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
                    break;
                case "--scenarios":
                    options = options with { Scenarios = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Compare.Scenarios.Parse).ToList() };
                    break;
                case "-h" or "--help":
                    options = options with { Help = true };
                    break;
                default:
                    throw new ArgumentException($"unknown option '{args[i]}'");
            }
        }

        return reps is { } n ? options with { Settings = options.Settings with { Repetitions = n } } : options;
    }
}
