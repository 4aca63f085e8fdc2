using System.Reactive.Linq;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

public class NodeBasicsTests
{
    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task Two_nodes_connect_and_exchange_packets_both_ways(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var options = UhuraNodeOptions.Default with { Protocol = protocol };
        var left = await kit.StartAsync("left", options);
        var right = await kit.StartAsync("right", options);

        var atLeft = Wait.First(left.Messages);
        var atRight = Wait.First(right.Messages);
        var rightSeesLeft = Wait.First(right.PeerConnected);
        Assert.Equal("left", await right.ConnectAsync(left.Info!).For());
        Assert.Equal("left", await rightSeesLeft);
        await left.WhenConnectedAsync("right").For();

        Assert.True(right.Send("left", new { type = "counter", total = 0 }));
        Assert.True(left.Send("right", new JObject { ["hello"] = "there" }));
        var m1 = await atLeft;
        Assert.Equal("right", m1.SenderId);
        Assert.Equal(0, m1.Packet["total"]!.Value<int>());
        var m2 = await atRight;
        Assert.Equal("left", m2.SenderId);
        Assert.Equal("there", (string)m2.Packet["hello"]!);
        Assert.False(left.Send("nobody", new { x = 1 }));
        Assert.Equal(["right"], left.Peers);
    }

    [Fact]
    public async Task An_event_emitted_on_one_node_reaches_the_other()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a");
        var b = await kit.StartAsync("b");
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        var got = Wait.First(a.Event("ping"));
        b.Emit("ping", 1, "two");
        var e = await got;
        Assert.Equal("b", e.OriginId);
        Assert.Equal(1, e.Arg<int>(0));
        Assert.Equal("two", e.Arg<string>(1));
    }
}
