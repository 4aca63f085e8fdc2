using System.Diagnostics;
using System.Text.Json;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// A contender written in Node: <c>node bench/NAME.js SCENARIO N</c>, run in the repository's <c>bench/</c> folder,
/// prints one JSON line as its last stdout line: <c>{"eventsPerSecond":..}</c> (throughput), <c>{"p50us":..,"p99us":..}</c>
/// (rtt), and optionally <c>{"deliveriesPerSecond":..}</c> (fanout), <c>{"managedBytesPerConnection":..,
/// "workingSetBytesPerConnection":..}</c> (idle-memory), <c>{"bytesPerEvent":..}</c> (allocations). A non-zero exit, or
/// a line without the expected keys, means the scenario is not supported (reported as missing, never as zero).
/// </summary>
public sealed class ExternalNodeContender(string name, string benchDirectory, string scriptFile) : IContender
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public string Name { get; } = name;

    /// <summary>The script's path.</summary>
    public string ScriptPath => Path.Combine(benchDirectory, scriptFile);

    /// <summary>The contender, or null when its script is not there (the Node scripts live in another branch for now).</summary>
    public static ExternalNodeContender? TryCreate(string name, string? benchDirectory, string scriptFile)
    {
        if (benchDirectory is null || !File.Exists(Path.Combine(benchDirectory, scriptFile)))
        {
            return null;
        }

        return new ExternalNodeContender(name, benchDirectory, scriptFile);
    }

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

    public async Task<ScenarioResult?> RunAsync(Scenario scenario, BenchSettings settings, CancellationToken cancellationToken)
    {
        var n = scenario switch
        {
            Scenario.Throughput => settings.ThroughputEvents,
            Scenario.Rtt => settings.RoundTrips,
            Scenario.Fanout => settings.FanoutEvents,
            Scenario.IdleMemory => settings.IdleConnections,
            Scenario.Allocations => settings.AllocationEvents,
            _ => 0,
        };
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = benchDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(scriptFile);
        start.ArgumentList.Add(scenario.Name());
        start.ArgumentList.Add(n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (scenario == Scenario.Fanout)
        {
            start.ArgumentList.Add(settings.FanoutClients.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start node");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var output = await stdout;
        _ = await stderr;
        if (process.ExitCode != 0)
        {
            return null;
        }

        var last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        return last is null ? null : Parse(scenario, last, settings);
    }

    /// <summary>Reads the script's JSON line for <paramref name="scenario"/>; null when it lacks the scenario's keys.</summary>
    public static ScenarioResult? Parse(Scenario scenario, string line, BenchSettings settings)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        double? Get(string key) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

        switch (scenario)
        {
            case Scenario.Throughput when Get("eventsPerSecond") is { } eps:
                return new ScenarioResult(new Metric("events/s", "events/s", eps, HigherIsBetter: true));
            case Scenario.Rtt when Get("p50us") is { } p50 && Get("p99us") is { } p99:
                return new ScenarioResult(new Metric("p50", "us", p50, HigherIsBetter: false), new Metric("p99", "us", p99, HigherIsBetter: false));
            case Scenario.Fanout when Get("deliveriesPerSecond") is { } dps:
                return new ScenarioResult([new Metric("deliveries/s", "deliveries/s", dps, HigherIsBetter: true)], $"{settings.FanoutClients} clients");
            case Scenario.IdleMemory when Get("managedBytesPerConnection") is { } managed:
                var metrics = new List<Metric> { new("managed/conn", "B/conn", managed, HigherIsBetter: false) };
                if (Get("workingSetBytesPerConnection") is { } ws)
                {
                    metrics.Add(new Metric("working-set/conn", "B/conn", ws, HigherIsBetter: false));
                }

                return new ScenarioResult(metrics, "measured by the Node script");
            case Scenario.Allocations when Get("bytesPerEvent") is { } bpe:
                return new ScenarioResult([new Metric("alloc/event", "B/event", bpe, HigherIsBetter: false)], "measured by the Node script");
            default:
                return null;
        }
    }
}
