using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Interop;

/// <summary>
/// Real <c>masterless@0.4.1</c> nodes (<c>interop/masterless-node.js</c>) talk to each other through <see cref="NodePeer"/>:
/// the harness the .NET masterless peer is tested with. Wire facts: <c>interop/MASTERLESS-NOTES.md</c>.
/// </summary>
[Trait("Category", "Interop")]
public sealed class MasterlessDriverTests
{
    [Fact]
    public async Task Two_nodes_that_keep_each_other_connect_and_exchange_packets_both_ways()
    {
        await using var left = await StartNodeAsync("left");
        await using var right = await StartNodeAsync("right");
        var leftId = NodeId(left);
        var rightId = NodeId(right);

        // Without a keep on either side both nodes send [false] and drop the connection right after the handshake.
        await right.Node.SendAsync(new { cmd = "keep", id = leftId });
        await right.Node.SendAsync(new { cmd = "connect", uri = left.Info });

        var atRight = await right.Node.WaitForAsync(Is("connect"));
        Assert.Equal(leftId, (string?)atRight["id"]);
        Assert.Equal(left.Info, (string?)atRight["info"]);
        var atLeft = await left.Node.WaitForAsync(Is("connect"));
        Assert.Equal(rightId, (string?)atLeft["id"]);
        Assert.Equal(right.Info, (string?)atLeft["info"]);

        await right.Node.SendAsync(new { cmd = "send", to = leftId, packet = new { text = "é😀", n = new[] { 1, 2 } } });
        Assert.True((bool?)(await right.Node.WaitForAsync(Done("send")))["result"]);
        var received = await left.Node.WaitForAsync(Is("message"));
        Assert.Equal(rightId, (string?)received["from"]);
        Assert.True(JToken.DeepEquals(JObject.Parse("""{"text":"é😀","n":[1,2]}"""), received["packet"]), received.ToString());

        await left.Node.SendAsync(new { cmd = "send", to = rightId, packet = new { reply = true } });
        var reply = await right.Node.WaitForAsync(Is("message"));
        Assert.Equal(leftId, (string?)reply["from"]);
        Assert.True((bool?)reply["packet"]?["reply"]);
        Assert.DoesNotContain(left.Node.Received.Concat(right.Node.Received), line => Type(line) is "disconnect" or "error");
    }

    [Fact]
    public async Task Simultaneous_connects_leave_exactly_one_connection_and_both_nodes_can_talk_over_it()
    {
        await using var left = await StartNodeAsync("left");
        await using var right = await StartNodeAsync("right");
        var leftId = NodeId(left);
        var rightId = NodeId(right);
        await left.Node.SendAsync(new { cmd = "keep", id = rightId });
        await right.Node.SendAsync(new { cmd = "keep", id = leftId });
        await Task.WhenAll(left.Node.WaitForAsync(Done("keep")), right.Node.WaitForAsync(Done("keep")));

        await Task.WhenAll(
            left.Node.SendAsync(new { cmd = "connect", uri = right.Info }),
            right.Node.SendAsync(new { cmd = "connect", uri = left.Info }));

        // Each attempt reports once: the surviving one with the remote id, the dropped one with an error.
        var results = new[]
        {
            await left.Node.WaitForAsync(Is("connectResult")),
            await right.Node.WaitForAsync(Is("connectResult")),
        };
        Assert.Single(results, result => result["error"]?.Type == JTokenType.Null);
        // Usually "connection closed" (the other side ended it); "duplicate connection" when it lost the race later.
        Assert.Single(results, result => result["error"]?.Type == JTokenType.String);
        Assert.Equal(rightId, (string?)(await left.Node.WaitForAsync(Is("connect")))["id"]);
        Assert.Equal(leftId, (string?)(await right.Node.WaitForAsync(Is("connect")))["id"]);

        await left.Node.SendAsync(new { cmd = "send", to = rightId, packet = new { from = "left" } });
        await right.Node.SendAsync(new { cmd = "send", to = leftId, packet = new { from = "right" } });
        Assert.Equal("left", (string?)(await right.Node.WaitForAsync(Is("message")))["packet"]?["from"]);
        Assert.Equal("right", (string?)(await left.Node.WaitForAsync(Is("message")))["packet"]?["from"]);

        await left.Node.SendAsync(new { cmd = "state" });
        Assert.Equal([rightId], (await left.Node.WaitForAsync(Done("state")))["connections"]!.Values<string>());
        foreach (var node in new[] { left.Node, right.Node })
        {
            Assert.Single(node.Received, line => Type(line) == "connect");
            Assert.DoesNotContain(node.Received, line => Type(line) is "disconnect" or "error");
        }
    }

    [Fact]
    public async Task A_multi_dispatch_returns_how_many_known_nodes_it_reached_and_each_of_them_gets_the_packet()
    {
        await using var hub = await StartNodeAsync("hub");
        await using var first = await StartNodeAsync("first");
        await using var second = await StartNodeAsync("second");
        var hubId = NodeId(hub);
        foreach (var spoke in new[] { first, second })
        {
            await spoke.Node.SendAsync(new { cmd = "keep", id = hubId });
            await spoke.Node.SendAsync(new { cmd = "connect", uri = hub.Info });
            await spoke.Node.WaitForAsync(Is("connect"));
            await hub.Node.WaitForAsync(line => Type(line) == "connect" && (string?)line["id"] == NodeId(spoke));
        }

        await hub.Node.SendAsync(new { cmd = "send", to = new[] { NodeId(first), "nobody", NodeId(second) }, packet = new { all = 1 } });
        Assert.Equal(2, (int?)(await hub.Node.WaitForAsync(Done("send")))["result"]);
        await hub.Node.SendAsync(new { cmd = "send", to = "nobody", packet = new { lost = 1 } });
        Assert.False((bool?)(await hub.Node.WaitForAsync(Done("send")))["result"]);

        foreach (var spoke in new[] { first, second })
        {
            var received = await spoke.Node.WaitForAsync(Is("message"));
            Assert.Equal(hubId, (string?)received["from"]);
            Assert.True(JToken.DeepEquals(JObject.Parse("""{"all":1}"""), received["packet"]), received.ToString());
        }

        // A packet must be an object: the package throws a TypeError, the driver reports it and answers ok false.
        await hub.Node.SendAsync(new { cmd = "send", to = NodeId(first), packet = new[] { 1 } });
        Assert.Equal("TypeError", (string?)(await hub.Node.WaitForAsync(Is("error")))["class"]);
        Assert.False((bool?)(await hub.Node.WaitForAsync(Done("send")))["ok"]);
    }

    private sealed record RunningNode(NodePeer Node, string Id, string Info) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Node.DisposeAsync();
    }

    private static async Task<RunningNode> StartNodeAsync(string name)
    {
        var id = $"{name}-{Guid.NewGuid():N}";
        var node = await NodePeer.StartAsync("masterless-node.js", id, "127.0.0.1", "0");
        try
        {
            var listening = await node.WaitForAsync(Is("listening"));
            var port = (int)listening["port"]!;
            Assert.NotEqual(0, port);
            Assert.Equal($"tcp://127.0.0.1:{port}", (string?)listening["info"]);
            return new RunningNode(node, id, (string)listening["info"]!);
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    private static string NodeId(RunningNode node) => node.Id;

    private static Func<JObject, bool> Is(string type) => line => Type(line) == type;

    private static Func<JObject, bool> Done(string cmd) => line => Type(line) == "done" && (string?)line["cmd"] == cmd;

    private static string? Type(JObject line) => (string?)line["type"];
}
