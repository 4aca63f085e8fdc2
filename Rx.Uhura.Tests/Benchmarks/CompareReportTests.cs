using System.Text.Json;
using System.Text.RegularExpressions;
using Rx.Uhura.Benchmarks.Compare;

namespace Rx.Uhura.Tests.Benchmarks;

/// <summary>The comparison table and JSON, from made-up results: ratio columns and missing figures.</summary>
[Trait("Category", "Bench")]
public sealed class CompareReportTests
{
    [Fact]
    public async Task The_socket_io_column_fills_in_once_socket_io_has_a_figure_for_the_scenario()
    {
        var report = Report("raw", "rx-native", "socket.io");
        report.Results.Add(Throughput("raw", 1_000_000));
        report.Results.Add(Throughput("rx-native", 200_000));
        report.Results.Add(Throughput("socket.io", 10_000));
        report.Results.Add(Fanout("raw", 50_000));

        var table = await TableAsync(report);

        Assert.Contains(table, l => Regex.IsMatch(l, @"^throughput\s+events/s\s+raw\s+1,000,000\s+1,000,000\s+1,000,000\s+events/s\s+1\.00x\s+100x$"));
        Assert.Contains(table, l => Regex.IsMatch(l, @"^throughput\s+events/s\s+rx-native\s+200,000\s+.*\s0\.20x\s+20\.00x$"));
        Assert.Contains(table, l => Regex.IsMatch(l, @"^throughput\s+events/s\s+socket\.io\s+10,000\s+.*\s0\.01x\s+1\.00x$"));

        // No socket.io figure for fanout: no ratio to it there.
        Assert.Contains(table, l => Regex.IsMatch(l, @"^fanout\s+deliveries/s\s+raw\s+50,000\s+.*\s1\.00x\s+-$"));

        var json = await JsonAsync(report);
        var rxNative = json.GetProperty("results").EnumerateArray().Single(r => r.GetProperty("contender").GetString() == "rx-native");
        var ratios = rxNative.GetProperty("metrics")[0].GetProperty("ratios");
        Assert.Equal(0.2, ratios.GetProperty("raw").GetDouble(), 9);
        Assert.Equal(20.0, ratios.GetProperty("socket.io").GetDouble(), 9);
        var rawFanout = json.GetProperty("results").EnumerateArray().Single(r => r.GetProperty("scenario").GetString() == "fanout");
        Assert.Equal(JsonValueKind.Null, rawFanout.GetProperty("metrics")[0].GetProperty("ratios").GetProperty("socket.io").ValueKind);
    }

    [Fact]
    public async Task A_contender_without_a_figure_gets_dashes_and_a_note_never_a_zero()
    {
        var report = Report("raw", "socket.io", "node-uhura");
        report.Results.Add(new ScenarioSummary(Scenario.Rtt, "raw", [Metric("p50", "us", 20, higherIsBetter: false), Metric("p99", "us", 50, higherIsBetter: false)], null));
        report.Missing.Add((Scenario.Rtt, "node-uhura", "stalled: no answer within 2 s after 12 measured round trips, so no figure"));
        report.Failures.Add((Scenario.Rtt, "socket.io", "InvalidOperationException: node socketio.js rtt 200 failed"));

        var table = await TableAsync(report);

        Assert.Contains(table, l => Regex.IsMatch(l, @"^rtt\s+p50\s+node-uhura\s+-\s+-\s+-\s+us\s+-\s+-$"));
        Assert.Contains(table, l => Regex.IsMatch(l, @"^rtt\s+p99\s+node-uhura\s+-\s+-\s+-\s+us\s+-\s+-$"));
        Assert.Contains(table, l => Regex.IsMatch(l, @"^rtt\s+p50\s+socket\.io\s+-\s+-\s+-\s+us\s+-\s+-$"));
        Assert.Contains("  rtt / node-uhura: stalled: no answer within 2 s after 12 measured round trips, so no figure", table);
        Assert.Contains("  rtt / socket.io: FAILED: InvalidOperationException: node socketio.js rtt 200 failed", table);

        var json = await JsonAsync(report);
        Assert.Single(json.GetProperty("results").EnumerateArray());
        var missing = Assert.Single(json.GetProperty("missing").EnumerateArray());
        Assert.Equal("node-uhura", missing.GetProperty("contender").GetString());
    }

    private static CompareReport Report(params string[] contenders)
    {
        var report = new CompareReport(BenchSettings.Tiny, "tiny");
        report.Contenders.AddRange(contenders);
        return report;
    }

    private static MetricSummary Metric(string name, string unit, double value, bool higherIsBetter) => new(name, unit, value, value, value, 1, higherIsBetter);

    private static ScenarioSummary Throughput(string contender, double eventsPerSecond) =>
        new(Scenario.Throughput, contender, [Metric("events/s", "events/s", eventsPerSecond, higherIsBetter: true)], null);

    private static ScenarioSummary Fanout(string contender, double deliveriesPerSecond) =>
        new(Scenario.Fanout, contender, [Metric("deliveries/s", "deliveries/s", deliveriesPerSecond, higherIsBetter: true)], null);

    private static async Task<List<string>> TableAsync(CompareReport report)
    {
        var output = new StringWriter();
        await report.WriteTableAsync(output);
        return output.ToString().Split('\n').Select(l => l.TrimEnd()).ToList();
    }

    private static async Task<JsonElement> JsonAsync(CompareReport report)
    {
        var output = new StringWriter();
        await report.WriteJsonAsync(output, CancellationToken.None);
        return JsonDocument.Parse(output.ToString()).RootElement.Clone();
    }
}
