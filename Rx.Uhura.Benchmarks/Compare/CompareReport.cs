using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>Collects the results of a run and writes the table and the JSON file.</summary>
internal sealed class CompareReport(BenchSettings settings, string sizeName)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public DateTimeOffset Date { get; } = DateTimeOffset.UtcNow;

    public List<ScenarioSummary> Results { get; } = [];

    public List<(Scenario Scenario, string Contender)> Unsupported { get; } = [];

    public List<(Scenario Scenario, string Contender, string Error)> Failures { get; } = [];

    private static string Machine => $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}";

    public async Task WriteTableAsync(TextWriter output)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"Rx.Uhura comparison run, {Date:yyyy-MM-dd HH:mm} UTC, {Machine}, size {sizeName}, {settings.Repetitions} repetition(s) after a warm-up");
        sb.AppendLine("Ratios are median / median of raw (resp. socket.io) on the same metric. Both ends of every connection run in this one process.");
        var rows = new List<string[]> { new[] { "scenario", "metric", "contender", "median", "min", "max", "unit", "/raw", "/socket.io" } };
        foreach (var scenario in Scenarios.All)
        {
            foreach (var result in Results.Where(r => r.Scenario == scenario))
            {
                foreach (var metric in result.Metrics)
                {
                    rows.Add([
                        scenario.Name(), metric.Name, result.Contender,
                        Format(metric.Median), Format(metric.Min), Format(metric.Max), metric.Unit,
                        Ratio(metric, scenario, "raw"), Ratio(metric, scenario, "socket.io"),
                    ]);
                }
            }
        }

        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            sb.AppendLine(string.Join("  ", row.Select((cell, c) => c is >= 3 and <= 5 or >= 7 ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c]))).TrimEnd());
        }

        var notes = Results.Where(r => r.Note is not null).Select(r => $"{r.Scenario.Name()} / {r.Contender}: {r.Note}").ToList();
        if (notes.Count > 0)
        {
            sb.AppendLine("Notes:");
            notes.ForEach(n => sb.AppendLine("  " + n));
        }

        foreach (var (scenario, contender) in Unsupported)
        {
            sb.AppendLine(Inv, $"  {scenario.Name()} / {contender}: not supported by this contender");
        }

        foreach (var (scenario, contender, error) in Failures)
        {
            sb.AppendLine(Inv, $"  {scenario.Name()} / {contender}: FAILED: {error}");
        }

        await output.WriteAsync(sb.ToString());
        await output.FlushAsync();
    }

    private string Ratio(MetricSummary metric, Scenario scenario, string baseline)
    {
        var reference = Results.FirstOrDefault(r => r.Scenario == scenario && r.Contender == baseline)?.Metrics.FirstOrDefault(m => m.Name == metric.Name);
        if (reference is null || reference.Median <= 1e-9) // a zero or negative (noise) baseline gives no meaningful ratio
        {
            return "-";
        }

        return (metric.Median / reference.Median).ToString("0.00", Inv) + "x";
    }

    private static string Format(double value) => Math.Abs(value) >= 100 ? value.ToString("N0", Inv) : value.ToString("0.##", Inv);

    public async Task WriteJsonAsync(string path, CancellationToken cancellationToken)
    {
        var document = new
        {
            date = Date.ToString("o", Inv),
            machine = new
            {
                cores = Environment.ProcessorCount,
                os = RuntimeInformation.OSDescription,
                dotnet = Environment.Version.ToString(),
                framework = RuntimeInformation.FrameworkDescription,
                architecture = RuntimeInformation.ProcessArchitecture.ToString(),
            },
            size = sizeName,
            settings,
            notes = "both ends of every connection run in the same process; allocations are GC.GetTotalAllocatedBytes(true) deltas over the whole process (send and receive sides together) divided by events",
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
                }),
            }),
            unsupported = Unsupported.Select(u => new { scenario = u.Scenario.Name(), contender = u.Contender }),
            failures = Failures.Select(f => new { scenario = f.Scenario.Name(), contender = f.Contender, error = f.Error }),
        };
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        await using var stream = File.Create(path);
        await JsonSerializer.SerializeAsync(stream, document, new JsonSerializerOptions { WriteIndented = true }, cancellationToken);
    }
}
