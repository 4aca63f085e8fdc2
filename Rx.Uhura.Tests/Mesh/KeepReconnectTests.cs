using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Chaos;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Mesh;

public class KeepReconnectTests
{
    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task A_kept_peer_whose_link_is_cut_is_reconnected_and_packets_sent_meanwhile_arrive(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var options = UhuraNodeOptions.Default with { Protocol = protocol, Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(20) } };
        var a = await kit.StartAsync("a", options);
        var b = await kit.StartAsync("b", options);
        await using var proxy = ChaosProxy.Start(UhuraEndpoint.Parse(a.Info!));
        Assert.Equal("a", await b.ConnectAsync(proxy.Uri).For());
        await a.WhenConnectedAsync("b").For();

        var lost = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Disconnect);
        var back = Wait.First(b.NodeEvents, e => e.Kind == NodeEventKind.Reconnect);
        var gone = new List<string>();
        using var _ = b.PeerDisconnected.Subscribe(gone.Add);
        Assert.Equal(1, proxy.CutAll());
        var disconnect = await lost;
        Assert.Equal("a", disconnect.PeerId);
        Assert.IsType<PeerLostException>(disconnect.Error);
        // Subscribed before the send: the redial may have brought the link back already, and then the packet can reach
        // a's hot Messages stream before a subscription made after the send (a CI run under load lost it that way).
        var atA = Wait.First(a.Messages);
        Assert.True(b.Send("a", new { during = "outage" }));
        Assert.Equal("a", (await back).PeerId);
        Assert.Equal("outage", (string)(await atA).Packet["during"]!);
        Assert.Empty(gone);
        Assert.True(proxy.Accepted >= 2); // a masterless listener closes a redial while it has not yet seen the old link end: then another
    }
}
