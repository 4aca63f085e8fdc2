using System.Net;
using System.Net.Sockets;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Cli;

/// <summary>
/// <c>uhura node</c> (CLI.md): mesh nodes run as real processes on port 0, driven by JSON lines on stdin and read by the
/// JSON lines they print, with each other (native and masterless) and with an in-process <see cref="UhuraNode"/>.
/// </summary>
[Trait("Category", "Cli")]
public sealed class NodeCliTests : IDisposable
{
    private readonly List<CliProcess> _processes = [];
    private readonly List<string> _files = [];

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            process.Dispose();
        }

        foreach (var file in _files)
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_node_prints_listening_first_with_its_id_the_real_port_and_the_protocol_and_exits_zero_on_SIGTERM()
    {
        using var node = CliProcess.Start("node", "--id", "solo", "--listen", "tcp://127.0.0.1:0");

        var first = await node.NextLineAsync();

        Assert.Equal("listening", (string?)first["type"]);
        Assert.Equal("solo", (string?)first["id"]);
        Assert.Equal("native", (string?)first["protocol"]);
        var endpoint = (string)first["endpoint"]!;
        Assert.StartsWith("tcp://127.0.0.1:", endpoint, StringComparison.Ordinal);
        Assert.InRange(int.Parse(endpoint["tcp://127.0.0.1:".Length..], System.Globalization.CultureInfo.InvariantCulture), 1, 65535);
        await node.TerminateAsync();
        Assert.Equal(0, await node.WaitForExitAsync());
        Assert.Empty(await node.RemainingLinesAsync());
        Assert.Equal(string.Empty, node.Stderr);
    }

    [Fact]
    public async Task Nodes_joined_by_the_connect_option_and_by_a_connect_line_see_each_other_and_exchange_direct_and_multi_dispatched_packets()
    {
        var (a, aUri) = await StartNodeAsync("a");
        var (b, _) = await StartNodeAsync("b");
        var (c, _) = await StartNodeAsync("c", "--connect", aUri);
        await b.WriteLineAsync($$"""{"connect":"{{aUri}}"}""");

        // a is the hub: it sees both, each of them sees a, every first connection says so.
        var atA = new[] { await a.WaitForLineAsync("peer-connect"), await a.WaitForLineAsync("peer-connect") };
        Assert.Equal(["b", "c"], atA.Select(l => (string)l["peer"]!).Order());
        Assert.All(atA, l => Assert.False((bool)l["reconnect"]!));
        Assert.Equal("a", (string?)(await b.WaitForLineAsync("peer-connect"))["peer"]);
        Assert.Equal("a", (string?)(await c.WaitForLineAsync("peer-connect"))["peer"]);

        await b.WriteLineAsync("""{"to":"a","data":{"n":1,"s":"é","nested":[1,{"x":null}]}}""");
        var direct = await a.WaitForLineAsync("message");
        Assert.Equal("b", (string?)direct["from"]);
        Assert.True(JToken.DeepEquals(JObject.Parse("""{"n":1,"s":"é","nested":[1,{"x":null}]}"""), direct["data"]), direct.ToString());

        await a.WriteLineAsync("""{"to":["b","c"],"data":{"all":true}}""");
        foreach (var node in new[] { b, c })
        {
            var message = await node.WaitForLineAsync("message");
            Assert.Equal("a", (string?)message["from"]);
            Assert.True(JToken.DeepEquals(JObject.Parse("""{"all":true}"""), message["data"]), message.ToString());
        }

        // a goes away: each of its peers says so.
        await a.TerminateAsync();
        Assert.Equal(0, await a.WaitForExitAsync());
        Assert.Equal("a", (string?)(await b.WaitForLineAsync("peer-disconnect"))["peer"]);
        Assert.Equal("a", (string?)(await c.WaitForLineAsync("peer-disconnect"))["peer"]);
        Assert.Equal(string.Empty, a.Stderr);
    }

    [Fact]
    public async Task An_event_emitted_on_any_node_of_a_three_node_line_reaches_every_other_node_exactly_once_with_its_origin()
    {
        // a - b - c: a's and c's events cross b.
        var (a, aUri) = await StartNodeAsync("a");
        var (b, bUri) = await StartNodeAsync("b", "--connect", aUri);
        var (c, _) = await StartNodeAsync("c", "--connect", bUri);
        await a.WaitForLineAsync("peer-connect");
        await c.WaitForLineAsync("peer-connect");
        var atB = new[] { await b.WaitForLineAsync("peer-connect"), await b.WaitForLineAsync("peer-connect") };
        Assert.Equal(["a", "c"], atB.Select(l => (string)l["peer"]!).Order());

        // Each node emits one event, then "done": events from one origin arrive in order on a line, so a second copy
        // of an event would come before its origin's "done".
        var nodes = new[] { ("a", a), ("b", b), ("c", c) };
        foreach (var (id, node) in nodes)
        {
            await node.WriteLineAsync($$"""{"emit":"hello","args":["from {{id}}",1,{"k":[true,null]}]}""");
            await node.WriteLineAsync("""{"emit":"done"}""");
        }

        foreach (var (id, node) in nodes)
        {
            var others = nodes.Select(n => n.Item1).Where(o => o != id).ToArray();
            var events = await EventsUntilDoneFromAsync(node, others);
            foreach (var origin in others)
            {
                var hello = Assert.Single(events, e => (string?)e["origin"] == origin && (string?)e["event"] == "hello");
                Assert.True(
                    JToken.DeepEquals(JArray.Parse($$"""["from {{origin}}",1,{"k":[true,null]}]"""), hello["args"]),
                    hello.ToString());
                Assert.Single(events, e => (string?)e["origin"] == origin && (string?)e["event"] == "done");
            }

            Assert.DoesNotContain(events, e => (string?)e["origin"] == id);
            Assert.Equal(4, events.Count);
        }
    }

    [Fact]
    public async Task A_link_that_neither_side_keeps_is_closed_and_one_that_either_side_keeps_stays_up()
    {
        // a connects to b, so a keeps b; b does not keep a.
        var (b, bUri) = await StartNodeAsync("b");
        var (a, _) = await StartNodeAsync("a", "--connect", bUri);
        await a.WaitForLineAsync("peer-connect");
        await b.WaitForLineAsync("peer-connect");

        // b keeps a too; the message after the keep flag on the same link tells that a has it.
        await b.WriteLineAsync("""{"keep":"a","value":true}""");
        await b.WriteLineAsync("""{"to":"a","data":{"step":1}}""");
        Assert.Equal(1, (int)(await a.WaitForLineAsync("message"))["data"]!["step"]!);

        // a stops keeping b: b still keeps the link, so it stays up.
        await a.WriteLineAsync("""{"keep":"b","value":false}""");
        await a.WriteLineAsync("""{"to":"b","data":{"step":2}}""");
        var second = await b.NextLineAsync();
        Assert.Equal("message", (string?)second["type"]);
        Assert.Equal(2, (int)second["data"]!["step"]!);

        // Now b stops keeping a as well: nobody keeps the link, both sides drop it.
        await b.WriteLineAsync("""{"keep":"a","value":false}""");
        var atB = await b.NextLineAsync();
        Assert.Equal("peer-disconnect", (string?)atB["type"]);
        Assert.Equal("a", (string?)atB["peer"]);
        Assert.Equal(JTokenType.Null, atB["error"]!.Type);
        var atA = await a.NextLineAsync();
        Assert.Equal("peer-disconnect", (string?)atA["type"]);
        Assert.Equal("b", (string?)atA["peer"]);

        // Neither reconnects: a packet to the other is refused.
        await a.WriteLineAsync("""{"to":"b","data":{"step":3}}""");
        Assert.Contains("'b' is not a peer", await a.WaitForStderrAsync("stdin line 3:"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_stdin_lines_are_reported_on_stderr_one_line_each_and_the_node_runs_on_after_stdin_ends()
    {
        var (b, bUri) = await StartNodeAsync("b");
        var (a, _) = await StartNodeAsync("a", "--connect", bUri);
        await a.WaitForLineAsync("peer-connect");
        await b.WaitForLineAsync("peer-connect");

        (string Line, string Error)[] bad =
        [
            ("not json", "not valid JSON"),
            ("[1,2]", "expected a JSON object, not array"),
            ("""{"hello":1}""", "not a command"),
            ("""{"to":"b"}""", "\"data\" must be a JSON object"),
            ("""{"to":"b","data":[1]}""", "\"data\" must be a JSON object"),
            ("""{"to":"nobody","data":{}}""", "'nobody' is not a peer"),
            ("""{"to":["b","nobody"],"data":{"partial":true}}""", "sent to 1 of 2 ids"),
            ("""{"to":7,"data":{}}""", "\"to\" must be a node id"),
            ("""{"emit":"e","args":3}""", "\"args\" must be an array"),
            ("""{"emit":5}""", "\"emit\" must be the event name"),
            ("""{"connect":"http://127.0.0.1:80"}""", "http://127.0.0.1:80"),
            ("""{"keep":"b","value":"yes"}""", "\"value\" must be true or false"),
            ("""{"to":"b","emit":"x","data":{}}""", "one command per line"),
        ];
        foreach (var (line, _) in bad)
        {
            await a.WriteLineAsync(line);
        }

        await a.WriteLineAsync("   ");
        await a.WriteLineAsync("""{"to":"b","data":{"still":"running"}}""");
        a.CloseInput();

        for (var i = 0; i < bad.Length; i++)
        {
            var error = await a.WaitForStderrAsync($"stdin line {i + 1}:");
            Assert.StartsWith("uhura: ", error, StringComparison.Ordinal);
            Assert.Contains(bad[i].Error, error, StringComparison.Ordinal);
        }

        // The multi-dispatch reached its one peer; the good line after the bad ones went through; stdin's end did not
        // stop the node, which still receives and closes on SIGTERM with exit 0.
        Assert.True((bool)(await b.WaitForLineAsync("message"))["data"]!["partial"]!);
        Assert.Equal("running", (string?)(await b.WaitForLineAsync("message"))["data"]!["still"]);
        await b.WriteLineAsync("""{"to":"a","data":{"after":"eof"}}""");
        Assert.Equal("eof", (string?)(await a.WaitForLineAsync("message"))["data"]!["after"]);
        await a.TerminateAsync();
        Assert.Equal(0, await a.WaitForExitAsync());
        Assert.Equal(bad.Length, a.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task A_connection_that_cannot_be_made_is_reported_and_the_node_runs_on()
    {
        var (a, _) = await StartNodeAsync("a", "--connect", $"tcp://127.0.0.1:{CliProcess.FreePort()}");
        Assert.Contains("cannot connect to tcp://127.0.0.1:", await a.WaitForStderrAsync("cannot connect"), StringComparison.Ordinal);

        // A node on another channel is refused at the handshake.
        var (other, otherUri) = await StartNodeAsync("other", "--channel", "elsewhere");
        await a.WriteLineAsync($$"""{"connect":"{{otherUri}}"}""");
        var refused = await a.WaitForStderrAsync("stdin line 1: cannot connect");
        Assert.Contains("channel", refused, StringComparison.OrdinalIgnoreCase);

        var (_, bUri) = await StartNodeAsync("b");
        await a.WriteLineAsync($$"""{"connect":"{{bUri}}"}""");
        Assert.Equal("b", (string?)(await a.WaitForLineAsync("peer-connect"))["peer"]);
        await other.TerminateAsync();
        Assert.Equal(0, await other.WaitForExitAsync());
        Assert.DoesNotContain(await other.RemainingLinesAsync(), l => (string?)l["type"] == "peer-connect");
    }

    [Fact]
    public async Task Two_masterless_nodes_exchange_packets_and_emit_is_refused_with_a_clear_line()
    {
        var (left, leftUri) = await StartNodeAsync("e4663c9c3f9a89112afc48389a951e09", "--protocol", "masterless");
        var (right, _) = await StartNodeAsync("b073a8ee09e1daca57e9d54a5efe5684", "--protocol", "masterless", "--connect", leftUri);
        Assert.Equal("b073a8ee09e1daca57e9d54a5efe5684", (string?)(await left.WaitForLineAsync("peer-connect"))["peer"]);
        Assert.Equal("e4663c9c3f9a89112afc48389a951e09", (string?)(await right.WaitForLineAsync("peer-connect"))["peer"]);

        await right.WriteLineAsync("""{"to":"e4663c9c3f9a89112afc48389a951e09","data":{"type":"counter","total":0}}""");
        var atLeft = await left.WaitForLineAsync("message");
        Assert.Equal("b073a8ee09e1daca57e9d54a5efe5684", (string?)atLeft["from"]);
        Assert.True(JToken.DeepEquals(JObject.Parse("""{"type":"counter","total":0}"""), atLeft["data"]), atLeft.ToString());
        await left.WriteLineAsync("""{"to":["b073a8ee09e1daca57e9d54a5efe5684"],"data":{"type":"counter","total":1}}""");
        Assert.Equal(1, (int)(await right.WaitForLineAsync("message"))["data"]!["total"]!);

        await left.WriteLineAsync("""{"emit":"event","args":["a",1]}""");
        var error = await left.WaitForStderrAsync("stdin line 2:");
        Assert.Contains("emit needs the event bus, which the masterless wire does not have", error, StringComparison.Ordinal);
        Assert.Contains("--protocol native", error, StringComparison.Ordinal);

        // Still running.
        await left.WriteLineAsync("""{"to":"b073a8ee09e1daca57e9d54a5efe5684","data":{"type":"counter","total":2}}""");
        Assert.Equal(2, (int)(await right.WaitForLineAsync("message"))["data"]!["total"]!);
        await left.TerminateAsync();
        Assert.Equal(0, await left.WaitForExitAsync());
        Assert.DoesNotContain(await left.RemainingLinesAsync(), l => (string?)l["type"] == "event");
    }

    [Fact]
    public async Task A_cli_node_and_an_in_process_UhuraNode_exchange_packets_and_bus_events_both_ways()
    {
        await using var dotnet = new UhuraNode(UhuraNodeOptions.Default with { NodeId = "dotnet" });
        var info = await dotnet.ListenAsync("tcp://127.0.0.1:0").For();
        var connected = Wait.First(dotnet.PeerConnected);
        var message = Wait.First(dotnet.Messages);
        var busEvent = Wait.First(dotnet.Event("from-cli"));

        var (cli, _) = await StartNodeAsync("cli", "--connect", info);
        Assert.Equal("cli", await connected);
        Assert.Equal("dotnet", (string?)(await cli.WaitForLineAsync("peer-connect"))["peer"]);
        Assert.Equal(["cli"], dotnet.Peers);

        await cli.WriteLineAsync("""{"to":"dotnet","data":{"q":"ping"}}""");
        var m = await message;
        Assert.Equal("cli", m.SenderId);
        Assert.Equal("ping", (string?)m.Packet["q"]);

        Assert.True(dotnet.Send("cli", new { a = "pong", n = 2 }));
        var atCli = await cli.WaitForLineAsync("message");
        Assert.Equal("dotnet", (string?)atCli["from"]);
        Assert.True(JToken.DeepEquals(JObject.Parse("""{"a":"pong","n":2}"""), atCli["data"]), atCli.ToString());

        dotnet.Emit("event", "a", 1);
        var e = await cli.WaitForLineAsync("event");
        Assert.Equal("dotnet", (string?)e["origin"]);
        Assert.Equal("event", (string?)e["event"]);
        Assert.True(JToken.DeepEquals(new JArray("a", 1), e["args"]), e.ToString());

        await cli.WriteLineAsync("""{"emit":"from-cli","args":[{"x":[1,2]},"y"]}""");
        var fromCli = await busEvent;
        Assert.Equal("cli", fromCli.OriginId);
        Assert.True(JToken.DeepEquals(JArray.Parse("""[{"x":[1,2]},"y"]"""), fromCli.Args), fromCli.ToString());

        // The CLI node closes on SIGTERM; the in-process node sees it go.
        var gone = Wait.First(dotnet.NodeEvents, ev => ev.Kind == NodeEventKind.Disconnect && ev.PeerId == "cli");
        await cli.TerminateAsync();
        Assert.Equal(0, await cli.WaitForExitAsync());
        await gone;
    }

    [Fact]
    public async Task A_node_on_a_unix_socket_is_reachable_there_and_removes_its_socket_file_on_SIGTERM()
    {
        var path = Path.Combine(Path.GetTempPath(), $"node-{Guid.NewGuid():N}"[..16] + ".sock");
        _files.Add(path);
        var (a, aUri) = await StartNodeAsync("a", "--listen", "unix://" + path);
        Assert.Equal("unix://" + path, aUri);
        Assert.True(File.Exists(path));
        var (b, _) = await StartNodeAsync("b", "--connect", aUri);
        Assert.Equal("a", (string?)(await b.WaitForLineAsync("peer-connect"))["peer"]);

        await a.TerminateAsync();
        Assert.Equal(0, await a.WaitForExitAsync());
        Assert.False(File.Exists(path));
    }

    [Theory]
    [InlineData("node", "--listen", "tcp://127.0.0.1:0")]
    [InlineData("node", "--id", "a")]
    [InlineData("node", "--id", "", "--listen", "tcp://127.0.0.1:0")]
    [InlineData("node", "--id", "a", "--listen", "nonsense")]
    [InlineData("node", "--id", "a", "--listen", "tcp://127.0.0.1:0", "--connect", "tcp://127.0.0.1")]
    [InlineData("node", "--id", "a", "--listen", "tcp://127.0.0.1:0", "--protocol", "uhura")]
    [InlineData("node", "--id", "a", "--listen", "tcp://127.0.0.1:0", "--protocol", "masterless", "--channel", "x")]
    [InlineData("node", "--id", "a", "--listen", "tcp://127.0.0.1:0", "--no-such-option")]
    public async Task Bad_usage_of_node_exits_two_with_a_one_line_message_and_nothing_on_stdout(params string[] args)
    {
        var (exitCode, cli) = await CliProcess.RunAsync(args);
        using (cli)
        {
            Assert.Equal(2, exitCode);
            var lines = cli.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, cli.Stderr);
            Assert.StartsWith("uhura: ", lines[0], StringComparison.Ordinal);
            Assert.Empty(await cli.RemainingLinesAsync());
        }
    }

    /// <summary>Starts <c>uhura node --id ID</c> (on <c>tcp://127.0.0.1:0</c> unless <c>--listen</c> is given) and returns it with its endpoint, read from its first line.</summary>
    private async Task<(CliProcess Node, string Endpoint)> StartNodeAsync(string id, params string[] options)
    {
        string[] listen = options.Contains("--listen") ? [] : ["--listen", "tcp://127.0.0.1:0"];
        var node = CliProcess.Start(["node", "--id", id, .. listen, .. options]);
        _processes.Add(node);
        var first = await node.NextLineAsync();
        Assert.Equal("listening", (string?)first["type"]);
        Assert.Equal(id, (string?)first["id"]);
        return (node, (string)first["endpoint"]!);
    }

    /// <summary>The event lines a node prints until it has printed a <c>done</c> event from each of <paramref name="origins"/>.</summary>
    private static async Task<List<JObject>> EventsUntilDoneFromAsync(CliProcess node, string[] origins)
    {
        var events = new List<JObject>();
        var pending = new HashSet<string>(origins, StringComparer.Ordinal);
        while (pending.Count > 0)
        {
            var line = await node.NextLineAsync();
            Assert.True((string?)line["type"] == "event", line.ToString());
            events.Add(line);
            if ((string?)line["event"] == "done")
            {
                pending.Remove((string)line["origin"]!);
            }
        }

        return events;
    }
}
