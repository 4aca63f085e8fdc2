using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Interop;

/// <summary>
/// The <c>@crussell52/socket-ipc</c> drivers (<c>interop/socket-ipc-server.js</c>, <c>socket-ipc-client.js</c>)
/// talk to each other through <see cref="NodePeer"/>: the harness the .NET socket-ipc peers are tested with.
/// </summary>
[Trait("Category", "Interop")]
public sealed class SocketIpcDriverTests : IDisposable
{
    // A short name: a unix socket path must fit in 108 bytes.
    private readonly string _socketFile = Path.Combine(Path.GetTempPath(), $"ipc-{Guid.NewGuid():N}"[..16] + ".sock");

    public void Dispose()
    {
        // A driver's exit leaves the socket file behind, as a dying Node server does.
        File.Delete(_socketFile);
    }

    [Fact]
    public async Task A_message_from_a_node_client_reaches_the_node_server_with_its_topic_and_client_id()
    {
        await using var server = await StartServerAsync();
        await using var client = await NodePeer.StartAsync("socket-ipc-client.js", _socketFile);
        await client.WaitForAsync(Is("connect"));
        var clientId = (string?)(await server.WaitForAsync(Is("connection")))["clientId"];
        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", clientId);

        await client.SendAsync(new { cmd = "send", topic = "greeting", message = new { text = "é😀", n = new[] { 1, 2 } }, id = 1 });
        await client.WaitForAsync(line => Type(line) == "done" && (int?)line["id"] == 1 && (bool?)line["ok"] == true);

        var received = await server.WaitForAsync(Is("message"));
        Assert.Equal("greeting", (string?)received["topic"]);
        Assert.Equal(clientId, (string?)received["clientId"]);
        Assert.True(JToken.DeepEquals(JObject.Parse("""{"text":"é😀","n":[1,2]}"""), received["message"]), received.ToString());
    }

    [Fact]
    public async Task A_broadcast_reaches_every_connected_node_client_and_a_send_only_its_own()
    {
        await using var server = await StartServerAsync();
        await using var first = await NodePeer.StartAsync("socket-ipc-client.js", _socketFile);
        await first.WaitForAsync(Is("connect"));
        var firstId = (string?)(await server.WaitForAsync(Is("connection")))["clientId"];
        await using var second = await NodePeer.StartAsync("socket-ipc-client.js", _socketFile);
        await second.WaitForAsync(Is("connect"));
        await server.WaitForAsync(Is("connection"));

        await server.SendAsync(new { cmd = "send", topic = "private", message = 1, clientId = firstId });
        await server.SendAsync(new { cmd = "broadcast", topic = "news", message = new[] { "a", "b" } });
        await server.WaitForAsync(line => Type(line) == "done" && (string?)line["cmd"] == "broadcast");

        var expected = JArray.Parse("""["a","b"]""");
        var toFirst = await first.WaitForAsync(line => Type(line) == "message" && (string?)line["topic"] == "news");
        var toSecond = await second.WaitForAsync(line => Type(line) == "message" && (string?)line["topic"] == "news");
        Assert.True(JToken.DeepEquals(expected, toFirst["message"]), toFirst.ToString());
        Assert.True(JToken.DeepEquals(expected, toSecond["message"]), toSecond.ToString());

        // The private message was written before the broadcast on the same socket, so it came first.
        Assert.Equal(1, (int?)(await first.WaitForAsync(Is("message")))["message"]);
        Assert.DoesNotContain(second.Received, line => Type(line) == "message" && (string?)line["topic"] == "private");
    }

    [Fact]
    public async Task A_node_client_reconnects_to_a_new_server_on_the_same_socket_file_after_the_first_one_closed()
    {
        await using var client = await NodePeer.StartAsync("socket-ipc-client.js", _socketFile, "20", "20");
        await client.WaitForAsync(Is("connectError"));
        await using (var first = await StartServerAsync())
        {
            await client.WaitForAsync(Is("connect"));
            await first.SendAsync(new { cmd = "close" });
            await first.WaitForAsync(Is("close"));
            await client.WaitForAsync(Is("disconnect"));
        }

        // While no server listens, a send is refused at once: nothing is queued for later.
        await client.SendAsync(new { cmd = "send", topic = "lost", message = 0 });
        var refused = await client.WaitForAsync(Is("error"));
        Assert.Equal("NoServerError", (string?)refused["class"]);

        await using var second = await StartServerAsync();
        await client.WaitForAsync(Is("reconnect"));
        await second.WaitForAsync(Is("connection"));
        await client.SendAsync(new { cmd = "send", topic = "back", message = true });

        var received = await second.WaitForAsync(Is("message"));
        Assert.Equal("back", (string?)received["topic"]);
        Assert.DoesNotContain(second.Received, line => Type(line) == "message" && (string?)line["topic"] == "lost");
    }

    private async Task<NodePeer> StartServerAsync()
    {
        var server = await NodePeer.StartAsync("socket-ipc-server.js", _socketFile);
        try
        {
            var listening = await server.WaitForAsync(Is("listening"));
            Assert.Equal(_socketFile, (string?)listening["socketFile"]);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private static Func<JObject, bool> Is(string type) => line => Type(line) == type;

    private static string? Type(JObject line) => (string?)line["type"];
}
