using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// A contender written in Node: <c>node SCRIPT SCENARIO ARGS...</c> run in the repository's <c>bench/</c> folder (see
/// bench/README.md). The script prints one JSON line as its last stdout line: <c>{"eventsPerSecond":..}</c>
/// (throughput), <c>{"p50us":..,"p99us":..,"n":..}</c> (rtt, possibly with <c>"stalled"</c> or
/// <c>"budgetExceeded"</c>), <c>{"deliveriesPerSecond":..}</c> (fanout), <c>{"managedBytesPerConnection":..}</c>
/// (idle-memory), <c>{"bytesPerEvent":..}</c> (allocations); <c>{"unsupported":"SCENARIO"}</c> (exit 3) for a scenario it
/// does not implement, reported as missing; <c>{"error":..}</c> with a non-zero exit for a failure.
/// </summary>
public sealed class ExternalNodeContender(NodeScript script, string benchDirectory) : IContender
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public string Name => Script.Contender;

    public NodeScript Script { get; } = script;

    /// <summary>The <c>bench/</c> folder the script runs in.</summary>
    public string BenchDirectory { get; } = benchDirectory;

    /// <summary>The script's path.</summary>
    public string ScriptPath => Path.Combine(BenchDirectory, Script.FileName);

    /// <summary>The contender, or null when <paramref name="benchDirectory"/> does not hold its script.</summary>
    public static ExternalNodeContender? TryCreate(NodeScript script, string? benchDirectory) =>
        benchDirectory is not null && File.Exists(Path.Combine(benchDirectory, script.FileName))
            ? new ExternalNodeContender(script, benchDirectory)
            : null;

    /// <summary>The repository's <c>bench/</c> folder: walks up from <paramref name="start"/> to the folder holding Rx.Uhura.sln.</summary>
    public static string? FindBenchDirectory(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rx.Uhura.sln")))
            {
                return Path.Combine(dir.FullName, "bench");
            }
        }

        return null;
    }

    /// <summary>Why the script cannot run here (no node on PATH, its npm packages not installed), or null when it can.</summary>
    public string? Problem()
    {
        if (FindOnPath(OperatingSystem.IsWindows() ? "node.exe" : "node") is null)
        {
            return "node is not on PATH (the Node contenders need Node.js 20)";
        }

        foreach (var package in Script.Packages)
        {
            var folder = Path.Combine(BenchDirectory, "node_modules", package);
            if (!File.Exists(Path.Combine(folder, "package.json")))
            {
                return $"{folder} is missing: run `npm ci --no-audit --no-fund` in {BenchDirectory}";
            }
        }

        return null;
    }

    /// <summary>
    /// The script's arguments for one run of <paramref name="scenario"/>, and the note saying what was capped. The
    /// warm-up pass runs the smallest sizes: a Node run is a process of its own that warms up inside the script, so
    /// the runner's warm-up only proves the script works (and warms the file cache).
    /// </summary>
    public (IReadOnlyList<string> Arguments, string? Note) Arguments(Scenario scenario, BenchSettings settings)
    {
        if (settings.IsWarmup)
        {
            settings = settings with { ThroughputEvents = 100, RoundTrips = 10, FanoutClients = 2, FanoutEvents = 5, IdleConnections = 5, AllocationEvents = 100 };
        }

        static string S(int n) => n.ToString(CultureInfo.InvariantCulture);
        static (int N, string? Note) Capped(int requested, NodeScript.Cap? cap, string unit) =>
            cap is { } c && requested > c.Max
                ? (c.Max, string.Create(CultureInfo.InvariantCulture, $"{c.Max:N0} of {requested:N0} {unit}, {c.Why}"))
                : (requested, null);

        switch (scenario)
        {
            case Scenario.Throughput:
                var (events, eventsNote) = Capped(settings.ThroughputEvents, Script.Throughput, "events");
                return ([Script.FileName, scenario.Name(), S(events)], eventsNote);
            case Scenario.Rtt:
                var (roundTrips, rttNote) = Capped(settings.RoundTrips, Script.RoundTrips, "round trips");
                List<string> rtt = [Script.FileName, scenario.Name(), S(roundTrips)];
                if (Script.RttBudgetSeconds is { } budget)
                {
                    rtt.AddRange(["--budget", S(budget)]);
                }

                return (rtt, rttNote);
            case Scenario.Fanout:
                return ([Script.FileName, scenario.Name(), S(settings.FanoutClients), S(settings.FanoutEvents)], $"{S(settings.FanoutClients)} clients");
            case Scenario.IdleMemory:
                return ([Script.FileName, scenario.Name(), S(settings.IdleConnections)], null);
            case Scenario.Allocations:
                return ([Script.FileName, scenario.Name(), S(settings.AllocationEvents)], null);
            default:
                throw new ArgumentOutOfRangeException(nameof(scenario));
        }
    }

    public async Task<ScenarioResult?> RunAsync(Scenario scenario, BenchSettings settings, CancellationToken cancellationToken)
    {
        var (arguments, note) = Arguments(scenario, settings);
        var command = "node " + string.Join(' ', arguments);
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = BenchDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {command}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException($"{command} did not finish within {Timeout.TotalMinutes} minutes. stderr: {Tail(await stderr)}");
        }

        var output = await stdout;
        var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        JsonDocument? doc = null;
        try
        {
            doc = last is null ? null : JsonDocument.Parse(last);
        }
        catch (JsonException)
        {
        }

        using (doc)
        {
            if (doc?.RootElement is not { ValueKind: JsonValueKind.Object } root)
            {
                throw new InvalidOperationException($"{command} exited {process.ExitCode} without a JSON result line. stderr: {Tail(await stderr)}");
            }

            if (root.TryGetProperty("unsupported", out _))
            {
                return null;
            }

            if (process.ExitCode != 0 || root.TryGetProperty("error", out _))
            {
                var error = root.TryGetProperty("error", out var e) ? e.ToString() : "no error given";
                throw new InvalidOperationException($"{command} failed (exit {process.ExitCode}): {error}. stderr: {Tail(await stderr)}");
            }

            return Parse(scenario, root, note) ?? throw new InvalidOperationException($"{command}: unexpected result line for {scenario.Name()}: {last}");
        }
    }

    /// <summary>
    /// Reads the script's result line for <paramref name="scenario"/> (<paramref name="note"/> is what the harness
    /// capped): null for <c>{"unsupported":..}</c>; a result without figures, saying why, for an rtt run that stalled or
    /// completed no round trip; throws when the line lacks the scenario's keys.
    /// </summary>
    public static ScenarioResult? Parse(Scenario scenario, string line, string? note = null)
    {
        using var doc = JsonDocument.Parse(line);
        if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("unsupported", out _))
        {
            return null;
        }

        return Parse(scenario, doc.RootElement, note) ?? throw new InvalidOperationException($"unexpected result line for {scenario.Name()}: {line}");
    }

    private static ScenarioResult? Parse(Scenario scenario, JsonElement root, string? note)
    {
        double? Get(string key) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        bool Flag(string key) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.True;
        static string Append(string? note, string text) => note is null ? text : note + "; " + text;
        var n = Get("n") is { } count ? count.ToString("N0", CultureInfo.InvariantCulture) : "?";

        switch (scenario)
        {
            case Scenario.Throughput when Get("eventsPerSecond") is { } eps:
                return new ScenarioResult([new Metric("events/s", "events/s", eps, HigherIsBetter: true)], note);
            case Scenario.Rtt when Flag("stalled"):
                // p50/p99 without the round trip that never came back would flatter the contender: no figure.
                return ScenarioResult.NoFigure(Append(note, $"stalled: no answer within 2 s after {n} measured round trips, so no figure"));
            case Scenario.Rtt when root.ValueKind == JsonValueKind.Object && root.TryGetProperty("p50us", out var p) && p.ValueKind == JsonValueKind.Null:
                return ScenarioResult.NoFigure(Append(note, "no round trip completed"));
            case Scenario.Rtt when Get("p50us") is { } p50 && Get("p99us") is { } p99:
                return new ScenarioResult(
                    [new Metric("p50", "us", p50, HigherIsBetter: false), new Metric("p99", "us", p99, HigherIsBetter: false)],
                    Flag("budgetExceeded") ? Append(note, $"the script's time budget ended the run after {n} measured round trips") : note);
            case Scenario.Fanout when Get("deliveriesPerSecond") is { } dps:
                return new ScenarioResult([new Metric("deliveries/s", "deliveries/s", dps, HigherIsBetter: true)], note);
            case Scenario.IdleMemory when Get("managedBytesPerConnection") is { } managed:
                var metrics = new List<Metric> { new("managed/conn", "B/conn", managed, HigherIsBetter: false) };
                if (Get("workingSetBytesPerConnection") is { } ws)
                {
                    metrics.Add(new Metric("working-set/conn", "B/conn", ws, HigherIsBetter: false));
                }

                return new ScenarioResult(metrics, Append(note, "measured by the Node script"));
            case Scenario.Allocations when Get("bytesPerEvent") is { } bpe:
                return new ScenarioResult([new Metric("alloc/event", "B/event", bpe, HigherIsBetter: false)], Append(note, "measured by the Node script"));
            default:
                return null;
        }
    }

    private static string Tail(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(empty)" : string.Join(" | ", lines.TakeLast(5));
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, name))
            .FirstOrDefault(File.Exists);
}
