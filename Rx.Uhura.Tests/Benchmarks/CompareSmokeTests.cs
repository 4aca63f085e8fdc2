using System.Text.Json;
using System.Text.RegularExpressions;
using Rx.Uhura.Benchmarks.Compare;
using Rx.Uhura.Tests.Interop;

namespace Rx.Uhura.Tests.Benchmarks;

/// <summary>
/// Proves the comparison harness still runs end to end (BENCHMARKS.md: a short smoke pass, nothing more). No
/// assertion here is about speed: only that every scenario produced a positive number where it should, and a
/// missing entry (never a zero) where the contender does not support it. The Node contenders run for real: a missing
/// node or npm fails the test, it never skips.
/// </summary>
[Trait("Category", "Bench")]
[Collection(BenchCollection.Name)]
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

    [Fact]
    public async Task Node_contenders_run_for_real_at_tiny_sizes_and_fill_the_socket_io_column()
    {
        await NodeModules.Bench.EnsureInstalledAsync();
        var json = Path.Combine(_dir, "node.json");
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        var exit = await CompareRunner.RunAsync(
            [
                "--size", "tiny", "--contenders", "raw,socket.io,node-uhura", "--scenarios", "throughput,rtt,fanout,idle-memory",
                "--node-dir", NodeModules.Bench.Folder, "--json", json,
            ],
            stdout,
            stderr);

        Assert.True(exit == 0, $"exit {exit}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = doc.RootElement;
        Assert.Empty(root.GetProperty("failures").EnumerateArray());
        Assert.Empty(root.GetProperty("skipped").EnumerateArray());
        foreach (var (scenario, contender) in new[]
        {
            ("throughput", "raw"), ("throughput", "socket.io"), ("throughput", "node-uhura"),
            ("rtt", "raw"), ("rtt", "socket.io"), ("rtt", "node-uhura"),
            ("fanout", "raw"), ("fanout", "socket.io"),
            ("idle-memory", "raw"),
        })
        {
            var result = AssertFigures(root, scenario, contender);
            if (scenario != "idle-memory")
            {
                // socket.io has a figure in this scenario, so every row has a ratio to it (and to raw).
                foreach (var metric in result.GetProperty("metrics").EnumerateArray())
                {
                    foreach (var baseline in new[] { "raw", "socket.io" })
                    {
                        var ratio = metric.GetProperty("ratios").GetProperty(baseline);
                        Assert.True(ratio.ValueKind == JsonValueKind.Number && ratio.GetDouble() > 0, $"{scenario} / {contender}: ratio to {baseline} is {ratio}");
                    }
                }
            }
        }

        // Unsupported scenarios are missing, with a reason, and have no figure at all.
        var missing = root.GetProperty("missing").EnumerateArray()
            .Select(m => (m.GetProperty("scenario").GetString(), m.GetProperty("contender").GetString(), m.GetProperty("reason").GetString()))
            .ToList();
        Assert.Equal(
            new[] { "fanout / node-uhura", "idle-memory / node-uhura", "idle-memory / socket.io" },
            missing.Select(m => $"{m.Item1} / {m.Item2}").Order(StringComparer.Ordinal));
        Assert.All(missing, m => Assert.Equal("not supported by this contender", m.Item3));
        Assert.False(TryResult(root, "fanout", "node-uhura", out _));

        // node-uhura's round trips are capped (tiny asks for 200), and the note says so.
        Assert.True(TryResult(root, "rtt", "node-uhura", out var rtt));
        Assert.Contains("100 of 200 round trips", rtt.GetProperty("note").GetString(), StringComparison.Ordinal);

        // The table: the /socket.io column is filled in, and a missing figure is a dash, never a zero.
        var table = stdout.ToString().Split('\n').Select(l => l.TrimEnd()).ToList();
        Assert.Contains(table, l => Regex.IsMatch(l, @"^throughput\s+events/s\s+raw\s+.*\s1\.00x\s+[0-9.,]+x$"));
        Assert.Contains(table, l => Regex.IsMatch(l, @"^throughput\s+events/s\s+node-uhura\s+.*\s[0-9.,]+x\s+[0-9.,]+x$"));
        Assert.Contains(table, l => Regex.IsMatch(l, @"^fanout\s+deliveries/s\s+node-uhura\s+-\s+-\s+-\s+deliveries/s\s+-\s+-$"));
        Assert.Contains(table, l => Regex.IsMatch(l, @"^idle-memory\s+managed/conn\s+socket\.io\s+-\s+-\s+-\s+B/conn\s+-\s+-$"));
        Assert.Contains("rtt / node-uhura: run 1/1", stderr.ToString(), StringComparison.Ordinal);
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

                // The memory deltas of a few connections are within the noise of this process and may be negative: the
                // test process also holds what earlier tests left (database pools pruning idle connections, timers).
                // In its own process (`uhura bench compare`) the harness measures nothing else.
                if (name is not ("working-set/conn" or "managed/conn"))
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
