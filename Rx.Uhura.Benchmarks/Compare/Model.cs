namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>The scenarios of the comparison run (see BENCHMARKS.md).</summary>
public enum Scenario
{
    Throughput,
    Rtt,
    Fanout,
    IdleMemory,
    Allocations,
}

/// <summary>Command-line names of the scenarios.</summary>
public static class Scenarios
{
    public static IReadOnlyList<Scenario> All { get; } = Enum.GetValues<Scenario>();

    public static string Name(this Scenario scenario) => scenario switch
    {
        Scenario.Throughput => "throughput",
        Scenario.Rtt => "rtt",
        Scenario.Fanout => "fanout",
        Scenario.IdleMemory => "idle-memory",
        Scenario.Allocations => "allocations",
        _ => throw new ArgumentOutOfRangeException(nameof(scenario)),
    };

    public static Scenario Parse(string name)
    {
        foreach (var scenario in All)
        {
            if (scenario.Name() == name)
            {
                return scenario;
            }
        }

        throw new ArgumentException($"unknown scenario '{name}' (expected {string.Join(", ", All.Select(x => x.Name()))})");
    }
}

/// <summary>Sizes and repetitions of one run; the same for every contender.</summary>
public sealed record BenchSettings
{
    /// <summary>Events sent one way in <see cref="Scenario.Throughput"/>.</summary>
    public int ThroughputEvents { get; init; } = 200_000;

    /// <summary>Round trips in <see cref="Scenario.Rtt"/>.</summary>
    public int RoundTrips { get; init; } = 20_000;

    /// <summary>Connected clients in <see cref="Scenario.Fanout"/>.</summary>
    public int FanoutClients { get; init; } = 1_000;

    /// <summary>Events broadcast to every client in <see cref="Scenario.Fanout"/>.</summary>
    public int FanoutEvents { get; init; } = 100;

    /// <summary>Idle connections in <see cref="Scenario.IdleMemory"/> (capped by the process's file descriptor limit).</summary>
    public int IdleConnections { get; init; } = 10_000;

    /// <summary>Events sent in <see cref="Scenario.Allocations"/>.</summary>
    public int AllocationEvents { get; init; } = 50_000;

    /// <summary>Measured repetitions per scenario and contender (after one warm-up).</summary>
    public int Repetitions { get; init; } = 3;

    /// <summary>True for the warm-up pass (smaller sizes, result discarded).</summary>
    public bool IsWarmup { get; init; }

    public static BenchSettings Normal { get; } = new();

    public static BenchSettings Quick { get; } = new()
    {
        ThroughputEvents = 50_000,
        RoundTrips = 2_000,
        FanoutClients = 100,
        FanoutEvents = 100,
        IdleConnections = 1_000,
        AllocationEvents = 10_000,
        Repetitions = 1,
    };

    /// <summary>Just enough to prove the harness works (the smoke test).</summary>
    public static BenchSettings Tiny { get; } = new()
    {
        ThroughputEvents = 2_000,
        RoundTrips = 200,
        FanoutClients = 10,
        FanoutEvents = 20,
        IdleConnections = 50,
        AllocationEvents = 1_000,
        Repetitions = 1,
    };

    /// <summary>
    /// The warm-up pass: the full size for throughput (so the JIT's tiered, profile-guided code is in place before the
    /// clock runs: a tenth was not enough for a run of a few hundred milliseconds), a tenth of the other sizes,
    /// idle-memory with few connections.
    /// </summary>
    public BenchSettings ForWarmup() => this with
    {
        ThroughputEvents = Math.Max(100, ThroughputEvents),
        RoundTrips = Math.Max(20, RoundTrips / 10),
        FanoutClients = Math.Max(2, FanoutClients / 10),
        FanoutEvents = Math.Max(5, FanoutEvents / 10),
        IdleConnections = Math.Max(5, IdleConnections / 20),
        AllocationEvents = Math.Max(100, AllocationEvents / 10),
        IsWarmup = true,
    };
}

/// <summary>One measured value of one repetition.</summary>
public sealed record Metric(string Name, string Unit, double Value, bool HigherIsBetter);

/// <summary>
/// What one repetition of one scenario measured (one or more metrics, the first the headline) plus notes. No metrics
/// means the run produced no figure this time (a stalled peer, say): the note says why, and the scenario is reported
/// as missing, never as zero.
/// </summary>
public sealed record ScenarioResult(IReadOnlyList<Metric> Metrics, string? Note = null)
{
    public ScenarioResult(params Metric[] metrics)
        : this((IReadOnlyList<Metric>)metrics)
    {
    }

    /// <summary>True when the run measured something.</summary>
    public bool HasFigures => Metrics.Count > 0;

    /// <summary>A run that produced no figure, and why.</summary>
    public static ScenarioResult NoFigure(string why) => new([], why);
}

/// <summary>A metric over the repetitions.</summary>
public sealed record MetricSummary(string Name, string Unit, double Median, double Min, double Max, int Repetitions, bool HigherIsBetter);

/// <summary>One contender on one scenario, over the repetitions.</summary>
public sealed record ScenarioSummary(Scenario Scenario, string Contender, IReadOnlyList<MetricSummary> Metrics, string? Note);

/// <summary>
/// Something measured by the comparison run. <see cref="RunAsync"/> runs ONE repetition of a scenario with the given
/// sizes and returns what it measured, or null when the contender does not support the scenario. The runner does the
/// warm-up and repetitions. Contenders written in other languages implement this by running a process (see
/// <see cref="ExternalNodeContender"/>).
/// </summary>
public interface IContender
{
    string Name { get; }

    Task<ScenarioResult?> RunAsync(Scenario scenario, BenchSettings settings, CancellationToken cancellationToken);
}
