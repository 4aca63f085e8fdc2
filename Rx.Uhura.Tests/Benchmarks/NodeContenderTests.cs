using System.Text.Json;
using Rx.Uhura.Benchmarks.Compare;

namespace Rx.Uhura.Tests.Benchmarks;

/// <summary>
/// The plumbing between the harness and the Node contender scripts (bench/README.md): where the scripts are found,
/// the arguments they get, how their result lines are read, and what happens when they cannot run. No Node run here.
/// </summary>
[Trait("Category", "Bench")]
[Collection(BenchCollection.Name)]
public sealed class NodeContenderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-bench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Node_contenders_are_registered_only_when_their_script_exists()
    {
        var repo = Path.Combine(_dir, "repo");
        Directory.CreateDirectory(Path.Combine(repo, "bench"));
        File.WriteAllText(Path.Combine(repo, "Rx.Uhura.sln"), "");
        var deep = Directory.CreateDirectory(Path.Combine(repo, "a", "b")).FullName;
        var bench = ExternalNodeContender.FindBenchDirectory(deep);
        Assert.Equal(Path.Combine(repo, "bench"), bench);

        Assert.Equal(["raw", "rx-native", "rx-uhura"], CompareRunner.AvailableContenders(bench).Select(c => c.Name));

        File.WriteAllText(Path.Combine(repo, "bench", "socketio.js"), "");
        Assert.Equal(["raw", "rx-native", "rx-uhura", "socket.io"], CompareRunner.AvailableContenders(bench).Select(c => c.Name));
        var external = Assert.IsType<ExternalNodeContender>(CompareRunner.AvailableContenders(bench)[3]);
        Assert.Equal(Path.Combine(repo, "bench", "socketio.js"), external.ScriptPath);

        File.WriteAllText(Path.Combine(repo, "bench", "node-uhura.js"), "");
        Assert.Equal(CompareRunner.ContenderNames, CompareRunner.AvailableContenders(bench).Select(c => c.Name));
        Assert.Equal(["raw", "rx-native", "rx-uhura"], CompareRunner.AvailableContenders(null).Select(c => c.Name));
    }

    [Fact]
    public void Scripts_get_the_run_sizes_fanout_gets_clients_then_events()
    {
        var socketIo = new ExternalNodeContender(NodeScript.SocketIo, _dir);
        var settings = BenchSettings.Quick with { FanoutClients = 123, FanoutEvents = 45 };

        AssertArgs(socketIo, Scenario.Throughput, settings, null, "socketio.js", "throughput", "50000");
        AssertArgs(socketIo, Scenario.Rtt, settings, null, "socketio.js", "rtt", "2000");
        AssertArgs(socketIo, Scenario.Fanout, settings, "123 clients", "socketio.js", "fanout", "123", "45");
        AssertArgs(socketIo, Scenario.IdleMemory, settings, null, "socketio.js", "idle-memory", "1000");
        AssertArgs(socketIo, Scenario.Allocations, settings, null, "socketio.js", "allocations", "10000");
    }

    [Fact]
    public void Node_uhura_counts_are_capped_and_the_note_says_so()
    {
        var nodeUhura = new ExternalNodeContender(NodeScript.NodeUhura, _dir);

        var (throughput, throughputNote) = Args(nodeUhura, Scenario.Throughput, BenchSettings.Quick);
        Assert.Equal(["node-uhura.js", "throughput", "10000"], throughput);
        Assert.StartsWith("10,000 of 50,000 events, capped: ", throughputNote, StringComparison.Ordinal);

        var (rtt, rttNote) = Args(nodeUhura, Scenario.Rtt, BenchSettings.Quick);
        Assert.Equal(["node-uhura.js", "rtt", "100", "--budget", "20"], rtt);
        Assert.StartsWith("100 of 2,000 round trips, capped: ", rttNote, StringComparison.Ordinal);

        // Under the cap: the run's own size, no note.
        AssertArgs(nodeUhura, Scenario.Throughput, BenchSettings.Tiny, null, "node-uhura.js", "throughput", "2000");
        AssertArgs(nodeUhura, Scenario.Rtt, BenchSettings.Tiny with { RoundTrips = 50 }, null, "node-uhura.js", "rtt", "50", "--budget", "20");
    }

    [Fact]
    public void The_warm_up_of_a_node_script_only_proves_it_runs_at_the_smallest_sizes()
    {
        var socketIo = new ExternalNodeContender(NodeScript.SocketIo, _dir);
        var warmup = BenchSettings.Normal.ForWarmup();

        Assert.Equal(["socketio.js", "throughput", "100"], Args(socketIo, Scenario.Throughput, warmup).Arguments);
        Assert.Equal(["socketio.js", "rtt", "10"], Args(socketIo, Scenario.Rtt, warmup).Arguments);
        Assert.Equal(["socketio.js", "fanout", "2", "5"], Args(socketIo, Scenario.Fanout, warmup).Arguments);
    }

    [Fact]
    public void Result_lines_are_read_per_scenario()
    {
        var throughput = ExternalNodeContender.Parse(Scenario.Throughput, """{"eventsPerSecond":1234.5,"n":2000}""");
        Assert.Equal(1234.5, Assert.Single(throughput!.Metrics).Value);
        Assert.Null(throughput.Note);

        var rtt = ExternalNodeContender.Parse(Scenario.Rtt, """{"p50us":40,"p99us":90,"n":200}""", "100 of 200 round trips");
        Assert.Equal([40.0, 90.0], rtt!.Metrics.Select(m => m.Value));
        Assert.Equal("100 of 200 round trips", rtt.Note);

        var fanout = ExternalNodeContender.Parse(Scenario.Fanout, """{"deliveriesPerSecond":5000}""", "10 clients");
        Assert.Equal(("deliveries/s", 5000.0), (Assert.Single(fanout!.Metrics).Name, fanout.Metrics[0].Value));
    }

    [Fact]
    public void An_unsupported_scenario_reads_as_missing_and_a_line_without_the_scenario_keys_is_an_error()
    {
        Assert.Null(ExternalNodeContender.Parse(Scenario.IdleMemory, """{"unsupported":"idle-memory"}"""));
        Assert.Throws<InvalidOperationException>(() => ExternalNodeContender.Parse(Scenario.Fanout, """{"eventsPerSecond":1}"""));
        Assert.Throws<InvalidOperationException>(() => ExternalNodeContender.Parse(Scenario.Rtt, """{"p50us":40}"""));
    }

    [Fact]
    public void A_time_budget_keeps_the_figures_over_the_round_trips_measured_and_says_so()
    {
        var rtt = ExternalNodeContender.Parse(Scenario.Rtt, """{"p50us":88000,"p99us":91000,"n":37,"budgetExceeded":true}""", "100 of 2,000 round trips");

        Assert.Equal([88000.0, 91000.0], rtt!.Metrics.Select(m => m.Value));
        Assert.Equal("100 of 2,000 round trips; the script's time budget ended the run after 37 measured round trips", rtt.Note);
    }

    [Fact]
    public void A_stalled_rtt_run_gives_no_figure_only_a_note()
    {
        var stalled = ExternalNodeContender.Parse(Scenario.Rtt, """{"p50us":88000,"p99us":90000,"n":12,"stalled":true}""");
        Assert.False(stalled!.HasFigures);
        Assert.Contains("stalled", stalled.Note, StringComparison.Ordinal);
        Assert.Contains("12 measured round trips", stalled.Note, StringComparison.Ordinal);

        var none = ExternalNodeContender.Parse(Scenario.Rtt, """{"p50us":null,"p99us":null,"n":0,"budgetExceeded":true}""");
        Assert.False(none!.HasFigures);
        Assert.Equal("no round trip completed", none.Note);
    }

    [Fact]
    public async Task A_node_contender_asked_for_that_cannot_run_fails_before_anything_runs_and_says_to_run_npm_ci()
    {
        var bench = FakeBenchWithoutModules();
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        var exit = await CompareRunner.RunAsync(["--size", "tiny", "--contenders", "raw,socket.io", "--scenarios", "throughput", "--node-dir", bench], stdout, stderr);

        Assert.Equal(1, exit);
        Assert.Equal(string.Empty, stdout.ToString());
        Assert.Contains($"socket.io cannot run: {Path.Combine(bench, "node_modules", "socket.io")} is missing: run `npm ci --no-audit --no-fund` in {bench}", stderr.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("warm-up", stderr.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_contenders_that_cannot_run_are_skipped_with_a_note_when_not_asked_for()
    {
        var bench = FakeBenchWithoutModules();
        var json = Path.Combine(_dir, "skipped.json");
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        var exit = await CompareRunner.RunAsync(["--size", "tiny", "--scenarios", "throughput", "--node-dir", bench, "--json", json], stdout, stderr);

        Assert.True(exit == 0, $"exit {exit}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var skipped = doc.RootElement.GetProperty("skipped").EnumerateArray().ToList();
        Assert.Equal(["socket.io", "node-uhura"], skipped.Select(s => s.GetProperty("contender").GetString()));
        Assert.All(skipped, s => Assert.Contains("npm ci --no-audit --no-fund", s.GetProperty("reason").GetString(), StringComparison.Ordinal));
        Assert.Equal(["raw", "rx-native", "rx-uhura"], doc.RootElement.GetProperty("contenders").EnumerateArray().Select(c => c.GetString()));
        Assert.Contains("socket.io: not run: ", stdout.ToString(), StringComparison.Ordinal);
        CompareSmokeTests.AssertFigures(doc.RootElement, "throughput", "rx-native");
    }

    [Theory]
    [InlineData("--contenders", "raw,nope")]
    [InlineData("--scenarios", "throughput,nope")]
    [InlineData("--size", "huge")]
    [InlineData("--reps", "0")]
    [InlineData("--node-dir", "/nonexistent/uhura-bench")]
    public async Task Bad_options_are_bad_usage(string option, string value)
    {
        var stderr = new StringWriter();

        var exit = await CompareRunner.RunAsync([option, value], new StringWriter(), stderr);

        Assert.True(exit == 2, stderr.ToString());
    }

    private static (IReadOnlyList<string> Arguments, string? Note) Args(ExternalNodeContender contender, Scenario scenario, BenchSettings settings) =>
        contender.Arguments(scenario, settings);

    private static void AssertArgs(ExternalNodeContender contender, Scenario scenario, BenchSettings settings, string? note, params string[] arguments)
    {
        var actual = contender.Arguments(scenario, settings);
        Assert.Equal(arguments, actual.Arguments);
        Assert.Equal(note, actual.Note);
    }

    private string FakeBenchWithoutModules()
    {
        var bench = Directory.CreateDirectory(Path.Combine(_dir, "bench")).FullName;
        File.WriteAllText(Path.Combine(bench, "socketio.js"), "");
        File.WriteAllText(Path.Combine(bench, "node-uhura.js"), "");
        return bench;
    }
}
