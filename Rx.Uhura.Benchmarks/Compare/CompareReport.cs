using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// Collects the results of a run and writes the table and the JSON file. A contender without a figure for a scenario
/// (not supported, no figure, failed) gets a row of <c>-</c> and a note saying why, never a zero.
/// </summary>
internal sealed class CompareReport(BenchSettings settings, string sizeName)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The ratio columns: median / median of these contenders on the same scenario and metric.</summary>
    public static IReadOnlyList<string> Baselines { get; } = ["raw", "socket.io"];

    public DateTimeOffset Date { get; } = DateTimeOffset.UtcNow;

    /// <summary>The contenders run, in order (the table's row order within a scenario).</summary>
    public List<string> Contenders { get; } = [];

    public List<ScenarioSummary> Results { get; } = [];

    /// <summary>A contender ran the scenario but has no figure: not supported, or why the run produced none.</summary>
    public List<(Scenario Scenario, string Contender, string Reason)> Missing { get; } = [];

    public List<(Scenario Scenario, string Contender, string Error)> Failures { get; } = [];

    /// <summary>Contenders not run at all (e.g. the Node packages are not installed), and why.</summary>
    public List<(string Contender, string Reason)> Skipped { get; } = [];

    /// <summary>True when the run was cancelled: the results are the ones completed so far.</summary>
    public bool Interrupted { get; set; }

    private static string Machine => $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC";

    public async Task WriteTableAsync(TextWriter output)
    {
        var sb = new StringBuilder();
        if (Interrupted)
        {
            sb.AppendLine("INTERRUPTED: only the results completed before the run was stopped.");
        }

        sb.AppendLine(Inv, $"Rx.Uhura comparison run, {Date:yyyy-MM-dd HH:mm} UTC, {Machine}, size {sizeName}, {settings.Repetitions} repetition(s) after a warm-up");
        sb.AppendLine("Ratios are median / median of raw (resp. socket.io) on the same metric. Both ends of every C# contender's connections run in this one process;");
        sb.AppendLine("a Node contender runs its server in one Node process and its client(s) in another.");
        List<string[]> rows = [["scenario", "metric", "contender", "median", "min", "max", "unit", .. Baselines.Select(b => "/" + b)]];
        foreach (var scenario in Scenarios.All)
        {
            var results = Results.Where(r => r.Scenario == scenario).ToList();
            var metricNames = results.SelectMany(r => r.Metrics).Select(m => (m.Name, m.Unit)).Distinct().ToList();
            foreach (var contender in Contenders.Union(results.Select(r => r.Contender)))
            {
                if (results.FirstOrDefault(r => r.Contender == contender) is { } result)
                {
                    foreach (var metric in result.Metrics)
                    {
                        rows.Add([
                            scenario.Name(), metric.Name, result.Contender,
                            Format(metric.Median), Format(metric.Min), Format(metric.Max), metric.Unit,
                            .. Baselines.Select(b => Ratio(metric, scenario, b) is { } ratio ? FormatRatio(ratio) : "-"),
                        ]);
                    }
                }
                else if (HasNoFigure(scenario, contender))
                {
                    foreach (var (name, unit) in metricNames.DefaultIfEmpty(("-", "-")))
                    {
                        rows.Add([scenario.Name(), name, contender, "-", "-", "-", unit, .. Baselines.Select(_ => "-")]);
                    }
                }
            }
        }

        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            sb.AppendLine(string.Join("  ", row.Select((cell, c) => c is >= 3 and <= 5 or >= 7 ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c]))).TrimEnd());
        }

        var notes = Results.Where(r => r.Note is not null).Select(r => $"{r.Scenario.Name()} / {r.Contender}: {r.Note}")
            .Concat(Missing.Select(m => $"{m.Scenario.Name()} / {m.Contender}: {m.Reason}"))
            .Concat(Failures.Select(f => $"{f.Scenario.Name()} / {f.Contender}: FAILED: {f.Error.ReplaceLineEndings(" ")}"))
            .Concat(Skipped.Select(s => $"{s.Contender}: not run: {s.Reason}"))
            .ToList();
        if (notes.Count > 0)
        {
            sb.AppendLine("Notes:");
            notes.ForEach(n => sb.AppendLine("  " + n));
        }

        await output.WriteAsync(sb.ToString());
        await output.FlushAsync();
    }

    /// <summary>median / median of <paramref name="baseline"/> on the same scenario and metric; null when it has none.</summary>
    public double? Ratio(MetricSummary metric, Scenario scenario, string baseline)
    {
        var reference = Results.FirstOrDefault(r => r.Scenario == scenario && r.Contender == baseline)?.Metrics.FirstOrDefault(m => m.Name == metric.Name);
        if (reference is null || reference.Median <= 1e-9) // a zero or negative (noise) baseline gives no meaningful ratio
        {
            return null;
        }

        return metric.Median / reference.Median;
    }

    private bool HasNoFigure(Scenario scenario, string contender) =>
        Missing.Any(m => m.Scenario == scenario && m.Contender == contender) || Failures.Any(f => f.Scenario == scenario && f.Contender == contender);

    /// <summary>Two decimals, or two significant digits below 0.1 (0.00087x rather than 0.00x), no decimals from 100.</summary>
    private static string FormatRatio(double ratio) => ratio switch
    {
        >= 100 => ratio.ToString("N0", Inv),
        >= 0.1 => ratio.ToString("0.00", Inv),
        _ => Math.Round(ratio, 1 - (int)Math.Floor(Math.Log10(ratio))).ToString("0.##########", Inv),
    } + "x";

    private static string Format(double value) => Math.Abs(value) >= 100 ? value.ToString("N0", Inv) : value.ToString("0.##", Inv);

    public async Task WriteJsonAsync(string path, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        await using var stream = File.Create(path);
        await JsonSerializer.SerializeAsync(stream, Document(), new JsonSerializerOptions { WriteIndented = true }, cancellationToken);
    }

    /// <summary>The JSON document on one line (for <c>--json -</c>).</summary>
    public async Task WriteJsonAsync(TextWriter output, CancellationToken cancellationToken)
    {
        await output.WriteLineAsync(JsonSerializer.Serialize(Document()).AsMemory(), cancellationToken);
        await output.FlushAsync(cancellationToken);
    }

    private object Document() => new
    {
        date = Date.ToString("o", Inv),
        machine = new
        {
            cores = Environment.ProcessorCount,
            os = RuntimeInformation.OSDescription,
            dotnet = Environment.Version.ToString(),
            framework = RuntimeInformation.FrameworkDescription,
            architecture = RuntimeInformation.ProcessArchitecture.ToString(),
            gc = System.Runtime.GCSettings.IsServerGC ? "server" : "workstation",
        },
        size = sizeName,
        settings,
        interrupted = Interrupted,
        notes = "both ends of every C# contender's connections run in the same process, a Node contender's server and client(s) in two Node processes; allocations are GC.GetTotalAllocatedBytes(true) deltas over the whole process (send and receive sides together) divided by events; ratios are median / median of the baseline on the same scenario and metric (null: no baseline figure)",
        contenders = Contenders,
        results = Results.Select(r => new
        {
            scenario = r.Scenario.Name(),
            contender = r.Contender,
            note = r.Note,
            metrics = r.Metrics.Select(m => new
            {
                name = m.Name,
                unit = m.Unit,
                median = m.Median,
                min = m.Min,
                max = m.Max,
                repetitions = m.Repetitions,
                higherIsBetter = m.HigherIsBetter,
                ratios = Baselines.ToDictionary(b => b, b => Ratio(m, r.Scenario, b)),
            }),
        }),
        missing = Missing.Select(m => new { scenario = m.Scenario.Name(), contender = m.Contender, reason = m.Reason }),
        failures = Failures.Select(f => new { scenario = f.Scenario.Name(), contender = f.Contender, error = f.Error }),
        skipped = Skipped.Select(s => new { contender = s.Contender, reason = s.Reason }),
    };
}
