using System.Globalization;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Interop;

/// <summary>A Node uhura@0.1.2 client against the .NET server.</summary>
[Trait("Category", "Interop")]
public sealed class NodeClientDotNetServerTests : IAsyncLifetime
{
    private readonly UhuraServer _server = new();
    private readonly ReplaySubject<Connection> _connections = new();
    private NodePeer? _node;

    private NodePeer Node => _node!;

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_connections);
        var endPoint = (System.Net.IPEndPoint)await _server.ListenAsync("tcp://127.0.0.1:0");
        _node = await NodePeer.StartAsync("uhura-client.js", endPoint.Port.ToString(CultureInfo.InvariantCulture), "--reconnect");
    }

    public async Task DisposeAsync()
    {
        if (_node is not null)
        {
            await _node.DisposeAsync();
        }

        await _server.CloseAsync().For();
    }

    private Task<JObject> ServerConnect() => Node.WaitForAsync(l => Type(l) == "connect" && l["config"]?.Type == JTokenType.Object);

    private static string? Type(JObject line) => (string?)line["type"];

    [Fact]
    public async Task Events_with_arguments_and_acks_flow_both_ways()
    {
        var connection = await Wait.First(_connections);
        var ping = Wait.First(connection.Event("ping"));
        await ServerConnect();
        await Node.SendAsync(new { cmd = "send", @event = "ping", args = new object[] { 1, "two", new { x = 3 }, new[] { true } }, ack = "p1" });

        var e = await ping;
        Assert.True(JToken.DeepEquals(JArray.Parse("""[1,"two",{"x":3},[true]]"""), new JArray(e.Args)), string.Join(",", e.Args));
        Assert.NotNull(e.MessageId); // the Node client sends with an id once acks are on
        Assert.Equal("p1", (string?)(await Node.WaitForAsync(l => Type(l) == "ack"))["tag"]);

        await connection.Send("pong", "é😀", 2.5, new { nested = new[] { 1, 2 } }).For(); // completes on the Node client's ack
        var pong = await Node.WaitForAsync(l => Type(l) == "event" && (string?)l["event"] == "pong");
        Assert.True(JToken.DeepEquals(JArray.Parse("""["é😀",2.5,{"nested":[1,2]}]"""), pong["args"]), pong.ToString());
    }

    [Fact]
    public async Task Events_the_node_client_could_not_parse_fail_at_the_servers_Send_and_the_link_stays_up()
    {
        var connection = await Wait.First(_connections);
        await ServerConnect();

        await Assert.ThrowsAsync<EncodeException>(() => connection.Send("bad", JValue.CreateUndefined()).For());
        await Assert.ThrowsAsync<FrameTooLargeException>(() => connection.Send("big", new string('x', 20 * 1024 * 1024)).For());

        var when = new DateTime(2026, 12, 2, 17, 0, 0, DateTimeKind.Utc);
        await connection.Send("after", when, double.NaN).For(); // a date and NaN go as JSON strings, which Node reads
        var after = await Node.WaitForAsync(l => Type(l) == "event" && (string?)l["event"] == "after");
        Assert.Equal("""["2026-12-02T17:00:00Z","NaN"]""", after["args"]!.ToString(Newtonsoft.Json.Formatting.None)); // the driver's reader makes the date a date again
        Assert.True(connection.IsConnected);
    }

    [Fact]
    public async Task Session_values_set_on_either_side_reach_the_other()
    {
        var connection = await Wait.First(_connections);
        await ServerConnect();
        await Node.SendAsync(new { cmd = "set", key = "fromNode", value = new { a = 1 } });
        await Wait.First(connection.Session, s => s.ContainsKey("fromNode"));
        Assert.Equal(1, connection.Session.Get("fromNode")!["a"]!.Value<int>());

        await Node.SendAsync(new { cmd = "set", key = new { many1 = 1, many2 = "two" } }); // ["_set", {...}, null]
        await Wait.First(connection.Session, s => s.ContainsKey("many2"));

        connection.Session.Set("fromDotNet", "hello");
        await Node.WaitForAsync(l => Type(l) == "set" && (string?)l["args"]![0] == "fromDotNet");
        await Node.SendAsync(new { cmd = "get", tag = "g" });
        var got = await Node.WaitForAsync(l => Type(l) == "get");
        Assert.Equal("hello", (string?)got["session"]!["fromDotNet"]);
        Assert.Equal(connection.Session.Id, (string?)got["session"]![UhuraSession.IdKey]);
    }

    [Fact]
    public async Task The_session_is_resumed_after_the_socket_is_destroyed()
    {
        var first = await Wait.First(_connections);
        await ServerConnect();
        await Node.SendAsync(new { cmd = "set", key = "kept", value = 42 });
        await Wait.First(first.Session, s => s.ContainsKey("kept"));
        var id = first.Session.Id;

        first.Dispose(); // destroy the socket; the Node client reconnects by itself
        await Node.WaitForAsync(l => Type(l) == "disconnect");
        var second = await Wait.First(_connections.Skip(1));
        await second.WhenReady.For();
        Assert.True(second.Resumed);
        Assert.Equal(id, second.Session.Id);
        Assert.Equal(42, second.Session.Get<int>("kept"));
        var reconnect = await ServerConnect();
        Assert.Equal(id, (string?)reconnect["session"]![UhuraSession.IdKey]);
    }

    [Fact]
    public async Task Invalidating_the_session_clears_the_node_client()
    {
        var connection = await Wait.First(_connections);
        await ServerConnect();
        var id = connection.Session.Id!;
        await connection.InvalidateSession().For();
        await Node.WaitForAsync(l => Type(l) == "invalidateSession");
        await Node.WaitForAsync(l => Type(l) == "disconnect");
        Assert.Null(await _server.SessionStore.GetAsync(id));

        // The Node client reconnects and gets a fresh session.
        var next = await Wait.First(_connections.Skip(1));
        await next.WhenReady.For();
        Assert.False(next.Resumed);
        Assert.NotEqual(id, next.Session.Id);
    }

    [Fact]
    public async Task A_one_mebibyte_event_sent_just_before_the_node_client_disconnects_arrives()
    {
        var connection = await Wait.First(_connections);
        var big = Wait.First(connection.Event("big"));
        await ServerConnect();
        await Node.SendAsync(new { cmd = "send", @event = "big", args = new[] { new string('.', 1 << 20) } });
        await Node.SendAsync(new { cmd = "disconnect" });
        Assert.Equal(1 << 20, (await big).Arg<string>(0).Length);
    }
}

/// <summary>The .NET client against a Node uhura@0.1.2 server.</summary>
[Trait("Category", "Interop")]
public sealed class DotNetClientNodeServerTests : IAsyncLifetime
{
    private NodePeer? _node;
    private string _uri = "";
    private readonly List<UhuraClient> _clients = [];

    private NodePeer Node => _node!;

    public async Task InitializeAsync()
    {
        _node = await NodePeer.StartAsync("uhura-server.js");
        var port = (int)(await Node.WaitForAsync(l => Type(l) == "listening"))["port"]!;
        _uri = $"tcp://127.0.0.1:{port}";
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        if (_node is not null)
        {
            await _node.DisposeAsync();
        }
    }

    private static string? Type(JObject line) => (string?)line["type"];

    private async Task<(UhuraClient Client, int Conn)> Connect(UhuraClientOptions? options = null)
    {
        var (client, connect) = await ConnectWithLine(options);
        return (client, (int)connect["conn"]!);
    }

    private async Task<(UhuraClient Client, JObject ConnectLine)> ConnectWithLine(UhuraClientOptions? options = null)
    {
        var client = UhuraClient.Connect(_uri, (options ?? new UhuraClientOptions()) with { Protocol = WireProtocol.NodeUhura });
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        return (client, await Node.WaitForAsync(l => Type(l) == "connect"));
    }

    [Fact]
    public async Task Events_with_arguments_and_acks_flow_both_ways()
    {
        var (client, conn) = await Connect();
        await client.Send("ping", 1, "two", new { x = 3 }).For(); // completes on the Node server's ack
        var ping = await Node.WaitForAsync(l => Type(l) == "event" && (string?)l["event"] == "ping");
        Assert.True(JToken.DeepEquals(JArray.Parse("""[1,"two",{"x":3}]"""), ping["args"]), ping.ToString());

        var pong = Wait.First(client.Event("pong"));
        await Node.SendAsync(new { cmd = "send", conn, @event = "pong", args = new object[] { "a", 2 }, ack = "t" });
        var e = await pong;
        Assert.Equal("a", e.Arg<string>(0));
        Assert.Equal(2, e.Arg<int>(1));
        Assert.Equal("t", (string?)(await Node.WaitForAsync(l => Type(l) == "ack"))["tag"]); // the .NET client acked
    }

    [Fact]
    public async Task Events_the_node_server_could_not_parse_fail_at_the_clients_Send_and_the_link_stays_up()
    {
        var (client, _) = await Connect();
        var link = client.Connection;

        await Assert.ThrowsAsync<EncodeException>(() => client.Send("bad", new JObject { ["a"] = JValue.CreateUndefined() }).For());
        Assert.Throws<FrameTooLargeException>(() => client.Post("big", new string('x', 20 * 1024 * 1024)));

        var when = new DateTime(2026, 12, 2, 17, 0, 0, DateTimeKind.Utc);
        await client.Send("after", when, double.PositiveInfinity).For(); // acknowledged by the Node server
        var after = await Node.WaitForAsync(l => Type(l) == "event" && (string?)l["event"] == "after");
        Assert.Equal("""["2026-12-02T17:00:00Z","Infinity"]""", after["args"]!.ToString(Newtonsoft.Json.Formatting.None)); // the driver's reader makes the date a date again
        Assert.Same(link, client.Connection);
    }

    [Fact]
    public async Task Events_the_node_server_sends_from_its_connect_callback_arrive()
    {
        await Node.SendAsync(new { cmd = "greet", @event = "welcome", args = new[] { "hi" } });
        var client = UhuraClient.Connect(_uri, new UhuraClientOptions { Protocol = WireProtocol.NodeUhura });
        _clients.Add(client);
        var welcome = await Wait.First(client.Event("welcome"));
        Assert.Equal("hi", welcome.Arg<string>(0));
    }

    [Fact]
    public async Task Session_values_set_on_either_side_reach_the_other()
    {
        var (client, conn) = await Connect();
        Assert.Matches("^[A-Za-z0-9]{24}$", client.Session.Id);
        client.Session.Set("fromDotNet", new[] { 1, 2 });
        await Node.WaitForAsync(l => Type(l) == "set" && (string?)l["args"]![0] == "fromDotNet");
        await Node.SendAsync(new { cmd = "get", conn, tag = "g" });
        var got = await Node.WaitForAsync(l => Type(l) == "get");
        Assert.Equal(new JArray(1, 2), got["session"]!["fromDotNet"]);

        await Node.SendAsync(new { cmd = "set", conn, key = "fromNode", value = "v" });
        await Wait.First(client.Session, s => s.ContainsKey("fromNode"));
        Assert.Equal("v", client.Session.Get<string>("fromNode"));
    }

    [Fact]
    public async Task The_session_is_resumed_by_id_after_the_socket_is_destroyed()
    {
        var (client, conn) = await Connect();
        client.Session.Set("kept", "yes");
        await Node.WaitForAsync(l => Type(l) == "set" && (string?)l["args"]![0] == "kept");
        var closed = Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        await Node.SendAsync(new { cmd = "destroy", conn });
        await closed;

        var (resumed, connect) = await ConnectWithLine(new UhuraClientOptions { InitialSession = client.Session.Get() });
        Assert.True(resumed.CurrentState.Resumed);
        Assert.Equal(client.Session.Id, resumed.Session.Id);
        Assert.True((bool)connect["resumed"]!);
        Assert.Equal("yes", (string?)connect["session"]!["kept"]);
    }

    [Fact]
    public async Task Invalidation_by_the_node_server_clears_the_session_and_drops_the_link()
    {
        var (client, conn) = await Connect();
        var closed = Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        await Node.SendAsync(new { cmd = "invalidate", conn });
        var state = await closed;
        Assert.Equal(DisconnectReason.SessionInvalidated, state.Disconnect?.Reason);
        Assert.Null(client.Session.Id);
    }

    [Fact]
    public async Task Disconnect_flushes_a_one_mebibyte_argument_to_the_node_server()
    {
        var (client, _) = await Connect();
        var send = client.Send("big", new string('.', 1 << 20));
        await client.Disconnect().For();
        await send.For();
        var big = await Node.WaitForAsync(l => Type(l) == "event" && (string?)l["event"] == "big");
        Assert.Equal(1 << 20, ((string)big["args"]![0]!).Length);
    }

    [Fact]
    public async Task The_uhura_command_sends_to_a_node_server_over_the_node_wire()
    {
        var (exitCode, send) = await Cli.CliProcess.RunAsync("send", "--connect", _uri, "--protocol", "uhura", "hello", "{\"n\":1}", "--count", "3");
        using (send)
        {
            Assert.True(exitCode == 0, send.Stderr);
        }

        for (var i = 0; i < 3; i++)
        {
            var line = await Node.WaitForAsync(l => Type(l) == "event" && (string?)l["event"] == "hello");
            Assert.True(JToken.DeepEquals(JArray.Parse($$"""[{{i}}, {"n": 1}]"""), line["args"]), line.ToString());
        }
    }

    [Fact]
    public async Task Many_events_in_a_row_all_arrive_in_order()
    {
        var (client, _) = await Connect();
        await Task.WhenAll(Enumerable.Range(0, 500).Select(i => client.Send("n", i))).For();
        for (var i = 0; i < 500; i++)
        {
            var line = await Node.WaitForAsync(l => Type(l) == "event");
            Assert.Equal(i, (int)line["args"]![0]!);
        }
    }
}
