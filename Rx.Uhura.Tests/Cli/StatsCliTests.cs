using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Cli;

/// <summary><c>uhura serve --stats</c> and <c>uhura stats</c>, run as real processes.</summary>
[Trait("Category", "Cli")]
public sealed class StatsCliTests
{
    private static async Task<string> ListeningEndpointAsync(CliProcess serve)
    {
        var first = await serve.NextLineAsync();
        Assert.Equal("listening", (string?)first["type"]);
        return (string)first["endpoint"]!;
    }

    [Fact]
    public async Task Stats_prints_one_json_line_per_poll_with_the_connections_of_a_server_run_with_stats()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0", "--stats");
        var endpoint = await ListeningEndpointAsync(serve);

        // A connection that stays: a listener, which the statistics must show next to the stats client's own.
        using var listen = CliProcess.Start("listen", "--connect", endpoint);
        await listen.WaitForLineAsync("state", l => (string?)l["state"] == "connected");
        var listenConn = (string)(await serve.WaitForLineAsync("connect"))["conn"]!;

        var (exitCode, stats) = await CliProcess.RunAsync("stats", "--connect", endpoint, "--count", "2", "--interval", "0.2", "--json");
        using (stats)
        {
            Assert.True(exitCode == 0, stats.Stderr);
            var lines = await stats.RemainingLinesAsync();
            Assert.Equal(2, lines.Count);
            foreach (var line in lines)
            {
                Assert.Equal("stats", (string?)line["type"]);
                Assert.Equal(2, (int)line["count"]!);
                var connections = (JArray)line["connections"]!;
                Assert.Equal(2, connections.Count);
                var listener = connections.Single(c => (string?)c["conn"] == listenConn);
                Assert.Equal("native", (string?)listener["protocol"]);
                Assert.StartsWith("127.0.0.1:", (string?)listener["remote"], StringComparison.Ordinal);
                Assert.True((long)listener["bytesIn"]! > 0);
            }

            Assert.Equal(JTokenType.Null, lines[0]["totals"]!["eventsInPerSec"]!.Type); // no rate before a second poll
            Assert.Equal(JTokenType.Float, lines[1]["totals"]!["eventsInPerSec"]!.Type);
            Assert.True((long)lines[1]["timestamp"]! > (long)lines[0]["timestamp"]!);
        }

        await listen.TerminateAsync();
        Assert.Equal(0, await listen.WaitForExitAsync());
        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Stats_against_a_server_without_stats_exits_one_with_a_clear_message_and_nothing_on_stdout()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0");
        var endpoint = await ListeningEndpointAsync(serve);

        var (exitCode, stats) = await CliProcess.RunAsync("stats", "--connect", endpoint, "--count", "1");
        using (stats)
        {
            Assert.Equal(1, exitCode);
            Assert.Empty(await stats.RemainingLinesAsync());
            var stderr = stats.Stderr.Trim();
            Assert.StartsWith("uhura: statistics refused by " + endpoint, stderr, StringComparison.Ordinal);
            Assert.Contains("--stats", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', stderr);
        }

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Stats_with_a_bad_interval_is_bad_usage()
    {
        var (exitCode, stats) = await CliProcess.RunAsync("stats", "--connect", "tcp://127.0.0.1:1", "--interval", "0");
        using (stats)
        {
            Assert.Equal(2, exitCode);
            Assert.Contains("--interval", stats.Stderr, StringComparison.Ordinal);
        }
    }
}
