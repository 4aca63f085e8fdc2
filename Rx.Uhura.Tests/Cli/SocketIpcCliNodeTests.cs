using Newtonsoft.Json.Linq;
using Rx.Uhura.Tests.Interop;

namespace Rx.Uhura.Tests.Cli;

/// <summary>
/// The <c>uhura</c> command with <c>--protocol socket-ipc</c> against the real npm <c>@crussell52/socket-ipc@0.4.0</c>:
/// <c>serve</c> with Node clients (<c>interop/socket-ipc-client.js</c>), <c>send</c> and <c>listen</c> with a Node server
/// (<c>interop/socket-ipc-server.js</c>).
/// </summary>
[Trait("Category", "Cli")]
[Trait("Category", "Interop")]
public sealed class SocketIpcCliNodeTests : IAsyncLifetime
{
    // A short name: a unix socket path must fit in 108 bytes.
    private readonly string _socketFile = Path.Combine(Path.GetTempPath(), $"cli-{Guid.NewGuid():N}"[..16] + ".sock");
    private readonly List<NodePeer> _nodes = [];

    private string Uri => "unix://" + _socketFile;

    public Task InitializeAsync() => Task.CompletedTask;

    // IAsyncLifetime, not IAsyncDisposable: xUnit v2 calls only the former on a test class.
    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }

        File.Delete(_socketFile);
    }

    private async Task<NodePeer> NodeAsync(string script, params string[] args)
    {
        var node = await NodePeer.StartAsync(script, args);
        _nodes.Add(node);
        return node;
    }

    [Fact]
    public async Task Serve_prints_the_topics_of_node_clients_and_echo_answers_only_the_sender()
    {
        using var serve = CliProcess.Start("serve", "--listen", Uri, "--protocol", "socket-ipc", "--echo");
        await SocketIpcCliTests.ListeningEndpointAsync(serve);
        var sender = await NodeAsync("socket-ipc-client.js", _socketFile, "20", "20");
        await sender.WaitForAsync(Is("connect"));
        var senderConn = (string)(await serve.WaitForLineAsync("connect"))["conn"]!;
        var other = await NodeAsync("socket-ipc-client.js", _socketFile, "20", "20");
        await other.WaitForAsync(Is("connect"));
        var otherConn = (string)(await serve.WaitForLineAsync("connect"))["conn"]!;
        Assert.NotEqual(senderConn, otherConn);

        var message = JObject.Parse("{\"name\":\"crussell52\",\"text\":\"é😀\",\"n\":[1,2.5,null]}");
        await sender.SendAsync(new { cmd = "send", topic = "hello", message });
        var e = await serve.WaitForLineAsync("event");
        Assert.Equal(senderConn, (string?)e["conn"]);
        Assert.Equal("hello", (string?)e["event"]);
        Assert.True(JToken.DeepEquals(new JArray(message), e["args"]), e.ToString());

        var echoed = await sender.WaitForAsync(line => Type(line) == "message");
        Assert.Equal("hello", (string?)echoed["topic"]);
        Assert.True(JToken.DeepEquals(message, echoed["message"]), echoed.ToString());

        // A topic without a message: no argument on serve's line, no message key in the echo either.
        await sender.SendAsync(new { cmd = "send", topic = "bare" });
        var bare = await serve.WaitForLineAsync("event");
        Assert.Equal("bare", (string?)bare["event"]);
        Assert.True(JToken.DeepEquals(new JArray(), bare["args"]), bare.ToString());
        var bareEcho = await sender.WaitForAsync(line => Type(line) == "message");
        Assert.Equal("bare", (string?)bareEcho["topic"]);
        Assert.Null(bareEcho["message"]);

        // The other client says something too, so it has read everything meant for it: none of the sender's echoes.
        await other.SendAsync(new { cmd = "send", topic = "mine", message = 7 });
        var mine = await other.WaitForAsync(line => Type(line) == "message");
        Assert.Equal("mine", (string?)mine["topic"]);
        Assert.Equal(otherConn, (string?)(await serve.WaitForLineAsync("event"))["conn"]);
        Assert.DoesNotContain(other.Received, line => Type(line) == "message" && (string?)line["topic"] != "mine");
        Assert.DoesNotContain(sender.Received.Concat(other.Received), line => Type(line) == "error");

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
        await sender.WaitForAsync(Is("disconnect"));
    }

    [Fact]
    public async Task Send_delivers_topics_to_a_node_server_which_sees_one_client_per_run_and_wait_reply_prints_its_answer()
    {
        var node = await NodeAsync("socket-ipc-server.js", _socketFile);
        await node.WaitForAsync(Is("listening"));

        var (exitCode, send) = await CliProcess.RunAsync("send", "--connect", Uri, "--protocol", "socket-ipc", "dessert", "{\"type\":\"pie\"}");
        using (send)
        {
            Assert.True(exitCode == 0, send.Stderr);
        }

        var clientId = (string?)(await node.WaitForAsync(Is("connection")))["clientId"];
        var dessert = await node.WaitForAsync(Is("message"));
        Assert.Equal("dessert", (string?)dessert["topic"]);
        Assert.Equal("pie", (string?)dessert["message"]?["type"]);
        Assert.Equal(clientId, (string?)dessert["clientId"]);

        (exitCode, send) = await CliProcess.RunAsync("send", "--connect", Uri, "--protocol", "socket-ipc", "n", "--count", "3");
        using (send)
        {
            Assert.True(exitCode == 0, send.Stderr);
        }

        var secondId = (string?)(await node.WaitForAsync(Is("connection")))["clientId"];
        Assert.NotEqual(clientId, secondId);
        for (var i = 0; i < 3; i++)
        {
            var n = await node.WaitForAsync(Is("message"));
            Assert.Equal("n", (string?)n["topic"]);
            Assert.Equal(i, (int?)n["message"]);
            Assert.Equal(secondId, (string?)n["clientId"]);
        }

        // --wait-reply: the Node server answers the client that asked, by its id.
        using var ask = CliProcess.Start("send", "--connect", Uri, "--protocol", "socket-ipc", "question", "\"why?\"", "--wait-reply");
        var question = await node.WaitForAsync(line => Type(line) == "message" && (string?)line["topic"] == "question");
        await node.SendAsync(new { cmd = "send", topic = "answer", message = new[] { 4, 2 }, clientId = (string?)question["clientId"] });
        var reply = await ask.NextLineAsync();
        Assert.Equal(0, await ask.WaitForExitAsync());
        Assert.Equal("answer", (string?)reply["event"]);
        Assert.True(JToken.DeepEquals(JArray.Parse("[[4,2]]"), reply["args"]), reply.ToString());
        Assert.DoesNotContain(node.Received, line => Type(line) == "error");
    }

    [Fact]
    public async Task Listen_prints_what_a_node_server_broadcasts()
    {
        var node = await NodeAsync("socket-ipc-server.js", _socketFile);
        await node.WaitForAsync(Is("listening"));
        using var listen = CliProcess.Start("listen", "--connect", Uri, "--protocol", "socket-ipc", "news");
        await listen.WaitForLineAsync("state", l => (string?)l["state"] == "connected");
        await node.WaitForAsync(Is("connection"));

        await node.SendAsync(new { cmd = "broadcast", topic = "noise", message = 0 });
        await node.SendAsync(new { cmd = "broadcast", topic = "news", message = new { headline = "é" } });
        var news = await listen.NextLineAsync();
        Assert.Equal("event", (string?)news["type"]);
        Assert.Equal("news", (string?)news["event"]);
        Assert.True(JToken.DeepEquals(JArray.Parse("[{\"headline\":\"é\"}]"), news["args"]), news.ToString());

        await listen.TerminateAsync();
        Assert.Equal(0, await listen.WaitForExitAsync());
        await node.WaitForAsync(Is("connectionClose"));
        Assert.DoesNotContain(node.Received, line => Type(line) == "error");
    }

    private static Func<JObject, bool> Is(string type) => line => Type(line) == type;

    private static string? Type(JObject line) => (string?)line["type"];
}
