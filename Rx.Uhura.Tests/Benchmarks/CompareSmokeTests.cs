using System.Text.Json;
using Rx.Uhura.Benchmarks.Compare;

namespace Rx.Uhura.Tests.Benchmarks;

/// <summary>
/// Proves the comparison harness still runs end to end (BENCHMARKS.md: a short smoke pass, nothing more). No
/// assertion here is about speed: only that every scenario produced a number for every C# contender.
/// </summary>
[Trait("Category", "Bench")]
public sealed class CompareSmokeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-bench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Compare_quick_tiny_writes_every_scenario_for_the_csharp_contenders()
    {
        var json = Path.Combine(_dir, "results.json");
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        var exit = await CompareRunner.RunAsync(
            ["--quick", "--size", "tiny", "--contenders", "raw,rx-native,rx-uhura", "--json", json],
            stdout,
            stderr);

        Assert.True(exit == 0, $"exit {exit}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.Contains("throughput", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("both ends", stdout.ToString(), StringComparison.Ordinal);
        Assert.True(File.Exists(json));

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = doc.RootElement;
        Assert.True(root.GetProperty("machine").GetProperty("cores").GetInt32() > 0);
        Assert.False(string.IsNullOrEmpty(root.GetProperty("machine").GetProperty("os").GetString()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("machine").GetProperty("dotnet").GetString()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("date").GetString()));
        var results = root.GetProperty("results").EnumerateArray().ToList();
        foreach (var scenario in new[] { "throughput", "rtt", "fanout", "idle-memory", "allocations" })
        {
            foreach (var contender in new[] { "raw", "rx-native", "rx-uhura" })
            {
                var result = results.SingleOrDefault(r => r.GetProperty("scenario").GetString() == scenario && r.GetProperty("contender").GetString() == contender);
                Assert.True(result.ValueKind == JsonValueKind.Object, $"{scenario} / {contender} missing");
                var metrics = result.GetProperty("metrics").EnumerateArray().ToList();
                Assert.NotEmpty(metrics);
                foreach (var metric in metrics)
                {
                    var name = metric.GetProperty("name").GetString();
                    Assert.False(string.IsNullOrEmpty(metric.GetProperty("unit").GetString()));
                    foreach (var field in new[] { "median", "min", "max" })
                    {
                        var value = metric.GetProperty(field).GetDouble();
                        Assert.True(double.IsFinite(value), $"{scenario} / {contender} / {name} {field} = {value}");

                        // The working-set delta of a few connections is within the noise of the process and may be negative.
                        if (name != "working-set/conn")
                        {
                            Assert.True(value > 0, $"{scenario} / {contender} / {name} {field} = {value}");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Node_contenders_are_registered_only_when_their_script_exists()
    {
        var repo = Path.Combine(_dir, "repo");
        Directory.CreateDirectory(Path.Combine(repo, "bench"));
        File.WriteAllText(Path.Combine(repo, "Rx.Uhura.sln"), "");
        var deep = Directory.CreateDirectory(Path.Combine(repo, "a", "b")).FullName;

        Assert.Equal(["raw", "rx-native", "rx-uhura"], CompareRunner.AvailableContenders(deep).Select(c => c.Name));

        File.WriteAllText(Path.Combine(repo, "bench", "socketio.js"), "");
        var names = CompareRunner.AvailableContenders(deep).Select(c => c.Name).ToList();
        Assert.Equal(["raw", "rx-native", "rx-uhura", "socket.io"], names);
        var external = Assert.IsType<ExternalNodeContender>(CompareRunner.AvailableContenders(deep)[3]);
        Assert.Equal(Path.Combine(repo, "bench", "socketio.js"), external.ScriptPath);
    }

    [Fact]
    public void Node_script_lines_are_read_per_scenario()
    {
        var settings = BenchSettings.Tiny;
        var throughput = ExternalNodeContender.Parse(Scenario.Throughput, """{"eventsPerSecond":1234.5}""", settings);
        Assert.Equal(1234.5, Assert.Single(throughput!.Metrics).Value);

        var rtt = ExternalNodeContender.Parse(Scenario.Rtt, """{"p50us":40,"p99us":90}""", settings);
        Assert.Equal([40.0, 90.0], rtt!.Metrics.Select(m => m.Value));

        Assert.Null(ExternalNodeContender.Parse(Scenario.Fanout, """{"eventsPerSecond":1}""", settings));
        Assert.Null(ExternalNodeContender.Parse(Scenario.Rtt, """{"p50us":40}""", settings));
    }
}
