using System.Text.Json;

namespace Rx.Uhura.Tests.Cli;

/// <summary>
/// <c>uhura bench compare</c>, run as a real process at the tiny size: it runs the comparison harness, shows progress on
/// stderr, and writes the table and the JSON. Structure only, never timing.
/// </summary>
[Trait("Category", "Cli")]
public sealed class BenchCommandTests : IDisposable
{
    /// <summary>A tiny run of one C# contender takes a second or two; this is only the limit for a loaded machine.</summary>
    private static readonly TimeSpan RunLimit = TimeSpan.FromMinutes(2);

    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-cli-bench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Bench_compare_writes_the_json_the_table_and_progress_on_stderr()
    {
        var json = Path.Combine(_dir, "results.json");
        using var cli = CliProcess.Start("bench", "compare", "--size", "tiny", "--contenders", "raw", "--scenarios", "throughput", "--json", json);

        var exitCode = await cli.WaitForExitAsync(RunLimit);

        Assert.True(exitCode == 0, $"exit {exitCode}\nstdout:\n{cli.Stdout}\nstderr:\n{cli.Stderr}");
        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        AssertTinyRawThroughput(doc.RootElement);
        Assert.Contains(cli.Stdout.Split('\n'), l => l.StartsWith("throughput  events/s  raw", StringComparison.Ordinal));
        Assert.Contains("] throughput / raw: run 1/1: events/s ", cli.Stderr, StringComparison.Ordinal);
        Assert.Contains($"uhura: results written to {json}", cli.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_compare_with_json_dash_prints_the_json_as_one_stdout_line_and_the_table_on_stderr()
    {
        using var cli = CliProcess.Start("bench", "compare", "--size", "tiny", "--contenders", "raw", "--scenarios", "throughput", "--json", "-");

        var exitCode = await cli.WaitForExitAsync(RunLimit);

        Assert.True(exitCode == 0, $"exit {exitCode}\nstdout:\n{cli.Stdout}\nstderr:\n{cli.Stderr}");
        var line = Assert.Single(cli.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var doc = JsonDocument.Parse(line);
        AssertTinyRawThroughput(doc.RootElement);
        Assert.Contains(cli.Stderr.Split('\n'), l => l.StartsWith("throughput  events/s  raw", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("bench")]
    [InlineData("bench", "compare", "--size", "huge")]
    [InlineData("bench", "compare", "--quick", "--size", "normal")]
    [InlineData("bench", "compare", "--contenders", "raw,nope")]
    [InlineData("bench", "compare", "--scenarios", "nope")]
    [InlineData("bench", "compare", "--reps", "0")]
    [InlineData("bench", "compare", "--node-dir", "/nonexistent/uhura-bench")]
    [InlineData("bench", "compare", "--no-such-option")]
    public async Task Bad_bench_usage_exits_two_with_a_one_line_message_and_nothing_on_stdout(params string[] args)
    {
        var (exitCode, cli) = await CliProcess.RunAsync(args);
        using (cli)
        {
            Assert.Equal(2, exitCode);
            var lines = cli.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1 && lines[0].StartsWith("uhura: ", StringComparison.Ordinal), $"expected one 'uhura: ' line on stderr:\n{cli.Stderr}");
            Assert.Equal(string.Empty, cli.Stdout);
        }
    }

    private static void AssertTinyRawThroughput(JsonElement root)
    {
        Assert.Equal("tiny", root.GetProperty("size").GetString());
        Assert.Equal(["raw"], root.GetProperty("contenders").EnumerateArray().Select(c => c.GetString()));
        Assert.Empty(root.GetProperty("missing").EnumerateArray());
        Assert.Empty(root.GetProperty("failures").EnumerateArray());
        var result = Assert.Single(root.GetProperty("results").EnumerateArray());
        Assert.Equal("throughput", result.GetProperty("scenario").GetString());
        Assert.Equal("raw", result.GetProperty("contender").GetString());
        var metric = Assert.Single(result.GetProperty("metrics").EnumerateArray());
        Assert.Equal("events/s", metric.GetProperty("name").GetString());
        foreach (var field in new[] { "median", "min", "max" })
        {
            Assert.True(metric.GetProperty(field).GetDouble() > 0, $"{field} = {metric.GetProperty(field)}");
        }

        Assert.Equal(1.0, metric.GetProperty("ratios").GetProperty("raw").GetDouble(), 9);
        Assert.Equal(JsonValueKind.Null, metric.GetProperty("ratios").GetProperty("socket.io").ValueKind);
    }
}
