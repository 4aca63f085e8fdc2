using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Interop;

/// <summary>
/// The socket-ipc wire against the real npm <c>@crussell52/socket-ipc@0.4.0</c>, both ways: Node clients with the .NET
/// server (topics both ways, broadcast, send to a client id, a malformed client) and a .NET client with a Node server.
/// </summary>
[Trait("Category", "Interop")]
public sealed class SocketIpcInteropTests : IAsyncLifetime
{
    private static readonly UhuraServerOptions ServerOptions = UhuraServerOptions.Default with { Protocol = WireProtocol.SocketIpc };
    private static readonly UhuraClientOptions ClientOptions = new() { Protocol = WireProtocol.SocketIpc, Reconnect = ReconnectOptions.Fixed(TimeSpan.FromMilliseconds(20)) };

    // A short name: a unix socket path must fit in 108 bytes.
    private readonly string _socketFile = Path.Combine(Path.GetTempPath(), $"ipc-{Guid.NewGuid():N}"[..16] + ".sock");
    private readonly List<IAsyncDisposable> _owned = [];

    public Task InitializeAsync() => Task.CompletedTask;

    // IAsyncLifetime, not IAsyncDisposable: xUnit v2 calls only the former on a test class.
    public async Task DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }

        File.Delete(_socketFile);
    }

    private async Task<UhuraServer> DotNetServerAsync()
    {
        var server = new UhuraServer(ServerOptions);
        _owned.Add(server);
        await server.ListenAsync("unix://" + _socketFile);
        return server;
    }

    private async Task<NodePeer> NodeClientAsync()
    {
        var client = await NodePeer.StartAsync("socket-ipc-client.js", _socketFile, "20", "20");
        _owned.Add(client);
        await client.WaitForAsync(Is("connect"));
        return client;
    }

    [Fact]
    public async Task A_node_client_and_the_dotnet_server_exchange_topics_both_ways()
    {
        var server = await DotNetServerAsync();
        var hello = Wait.First(server.Event("hello"));
        var node = await NodeClientAsync();

        await node.SendAsync(new { cmd = "send", topic = "hello", message = new { name = "crussell52", text = "é😀" } });
        var e = await hello;
        Assert.Equal("crussell52", (string?)e.Args[0]["name"]);
        Assert.Equal("é😀", (string?)e.Args[0]["text"]);

        // server.on('message.hello', (message, clientId) => server.send('hello', `Hello, ${message.name}!`, clientId))
        await server.SendTo(e.Connection!.Id, "hello", $"Hello, {e.Args[0]["name"]}!").For();
        var reply = await node.WaitForAsync(line => Type(line) == "message" && (string?)line["topic"] == "hello");
        Assert.Equal("Hello, crussell52!", (string?)reply["message"]);
    }

    [Fact]
    public async Task A_broadcast_reaches_every_node_client_and_a_send_to_an_id_only_that_one()
    {
        var server = await DotNetServerAsync();
        var connections = server.Connections.Take(2).ToList().ToTask();
        var first = await NodeClientAsync();
        var second = await NodeClientAsync();
        var ids = (await connections.For()).Select(c => c.Id).ToList();

        // Which connection is which Node client: ask the first to say so.
        var whoami = Wait.First(server.Event("whoami"));
        await first.SendAsync(new { cmd = "send", topic = "whoami", message = 1 });
        var firstId = (await whoami).Connection!.Id;
        Assert.Contains(firstId, ids);

        await server.SendTo(firstId, "private", 1).For();
        Assert.Equal(2, server.Broadcast("news", new JArray("a", "b")));
        foreach (var node in new[] { first, second })
        {
            var news = await node.WaitForAsync(line => Type(line) == "message" && (string?)line["topic"] == "news");
            Assert.True(JToken.DeepEquals(new JArray("a", "b"), news["message"]), news.ToString());
        }

        Assert.Equal(1, (int?)(await first.WaitForAsync(line => Type(line) == "message" && (string?)line["topic"] == "private"))["message"]);
        Assert.DoesNotContain(second.Received, line => Type(line) == "message" && (string?)line["topic"] == "private");
    }

    [Fact]
    public async Task A_malformed_client_is_closed_alone_while_node_clients_keep_working()
    {
        var server = await DotNetServerAsync();
        var node = await NodeClientAsync();
        var error = Wait.First(server.Errors);
        await using (var bad = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(_socketFile)))
        {
            await bad.WriteAsync("{bad json\0\0"); // the Node server process dies of this
            Assert.IsAssignableFrom<DecodeException>(await error);
        }

        var ping = Wait.First(server.Event("ping"));
        await node.SendAsync(new { cmd = "send", topic = "ping", message = 1 });
        var e = await ping;
        await server.SendTo(e.Connection!.Id, "pong", 2).For();
        Assert.Equal(2, (int?)(await node.WaitForAsync(line => Type(line) == "message" && (string?)line["topic"] == "pong"))["message"]);
    }

    [Fact]
    public async Task A_dotnet_client_talks_to_a_node_server_and_sends_to_it_by_topic()
    {
        var node = await NodePeer.StartAsync("socket-ipc-server.js", _socketFile);
        _owned.Add(node);
        await node.WaitForAsync(Is("listening"));
        var client = UhuraClient.Connect("unix://" + _socketFile, ClientOptions);
        _owned.Add(client);
        await client.WhenConnectedAsync().For();
        var clientId = (string?)(await node.WaitForAsync(Is("connection")))["clientId"];

        await Assert.ThrowsAsync<EncodeException>(() => client.Send("dessert", 1, 2)); // one message per topic
        await client.Send("dessert", new JObject { ["type"] = "pie" }).For();
        var message = await node.WaitForAsync(Is("message"));
        Assert.Equal("dessert", (string?)message["topic"]);
        Assert.Equal("pie", (string?)message["message"]?["type"]);
        Assert.Equal(clientId, (string?)message["clientId"]);

        var news = Wait.First(client.Event("news"));
        var direct = Wait.First(client.Event("direct"));
        await node.SendAsync(new { cmd = "broadcast", topic = "news", message = new[] { 1, 2 } });
        await node.SendAsync(new { cmd = "send", topic = "direct", message = "hi", clientId });
        var numbers = (await news).Args[0].ToObject<int[]>()!;
        Assert.Equal(new[] { 1, 2 }, numbers);
        Assert.Equal("hi", (await direct).Arg<string>(0));
        Assert.DoesNotContain(node.Received, line => Type(line) == "error");
    }

    [Fact]
    public async Task A_dotnet_client_reconnects_when_the_node_server_is_replaced()
    {
        var first = await NodePeer.StartAsync("socket-ipc-server.js", _socketFile);
        await first.WaitForAsync(Is("listening"));
        var client = UhuraClient.Connect("unix://" + _socketFile, ClientOptions);
        _owned.Add(client);
        await client.WhenConnectedAsync().For();
        var reconnected = Wait.First(client.State, s => s.Status == ConnectionStatus.Connected && s.IsReconnect);

        await first.SendAsync(new { cmd = "close" });
        await first.WaitForAsync(Is("close"));
        await first.DisposeAsync();
        await Assert.ThrowsAsync<NoServerException>(() => client.Send("lost", 0).For()); // socket-ipc: nothing queued

        var second = await NodePeer.StartAsync("socket-ipc-server.js", _socketFile);
        _owned.Add(second);
        await second.WaitForAsync(Is("listening"));
        await reconnected;
        await client.Send("back", true).For();
        var received = await second.WaitForAsync(Is("message"));
        Assert.Equal("back", (string?)received["topic"]);
        Assert.True((bool?)received["message"]);
    }

    private static Func<JObject, bool> Is(string type) => line => Type(line) == type;

    private static string? Type(JObject line) => (string?)line["type"];
}
