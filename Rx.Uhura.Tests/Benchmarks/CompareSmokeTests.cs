using System.Text.Json;
using Rx.Uhura.Benchmarks.Compare;

namespace Rx.Uhura.Tests.Benchmarks;

/// <summary>
/// Proves the comparison harness still runs end to end (BENCHMARKS.md: a short smoke pass, nothing more). No
/// assertion here is about speed: only that every scenario produced a positive number where it should, and a
/// missing entry (never a zero) where the contender does not support it.
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
        Assert.Contains("throughput / raw: run 1/1", stderr.ToString(), StringComparison.Ordinal);
        Assert.True(File.Exists(json));

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = doc.RootElement;
        Assert.True(root.GetProperty("machine").GetProperty("cores").GetInt32() > 0);
        Assert.False(string.IsNullOrEmpty(root.GetProperty("machine").GetProperty("os").GetString()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("machine").GetProperty("dotnet").GetString()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("date").GetString()));
        Assert.Empty(root.GetProperty("missing").EnumerateArray());
        Assert.Empty(root.GetProperty("failures").EnumerateArray());
        foreach (var scenario in new[] { "throughput", "rtt", "fanout", "idle-memory", "allocations" })
        {
            foreach (var contender in new[] { "raw", "rx-native", "rx-uhura" })
            {
                AssertFigures(root, scenario, contender);
            }
        }
    }

    /// <summary>Asserts <paramref name="scenario"/> / <paramref name="contender"/> has positive, finite figures; returns its result.</summary>
    internal static JsonElement AssertFigures(JsonElement root, string scenario, string contender)
    {
        Assert.True(TryResult(root, scenario, contender, out var result), $"{scenario} / {contender} missing");
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

        return result;
    }

    internal static bool TryResult(JsonElement root, string scenario, string contender, out JsonElement result)
    {
        result = root.GetProperty("results").EnumerateArray()
            .SingleOrDefault(r => r.GetProperty("scenario").GetString() == scenario && r.GetProperty("contender").GetString() == contender);
        return result.ValueKind == JsonValueKind.Object;
    }
}
