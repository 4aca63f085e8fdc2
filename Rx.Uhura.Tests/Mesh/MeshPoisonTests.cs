using System.Collections.Concurrent;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>
/// What a peer would refuse is refused at the sender: a packet or bus event over <see cref="UhuraNodeOptions.MaxPacketSize"/>
/// made the peer drop the link, and a kept peer's redialled link got it again (the link came and went for as long as the
/// node lived, and nothing sent after it arrived). Also the failures nobody awaits are observed.
/// </summary>
public class MeshPoisonTests
{
    private const int Limit = 4096;

    private static UhuraNodeOptions Options(MeshProtocol protocol) => UhuraNodeOptions.Default with { Protocol = protocol, Reconnect = MeshSteps.FastReconnect, MaxPacketSize = Limit };

    [Theory]
    [InlineData(MeshProtocol.Native)]
    [InlineData(MeshProtocol.Masterless)]
    public async Task A_packet_over_MaxPacketSize_is_refused_at_the_send_and_the_link_carries_on(MeshProtocol protocol)
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(protocol));
        var b = await kit.StartAsync("b", Options(protocol));
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        var lost = new ConcurrentQueue<string>();
        using var watch = a.PeerDisconnected.Subscribe(lost.Enqueue);

        // {"s":"xxx..."}: 8 bytes around the string. At the limit it goes; one byte more does not.
        var atLimit = new { s = new string('x', Limit - 8) };
        var over = new { s = new string('x', Limit - 7) };
        var error = Assert.Throws<FrameTooLargeException>(() => b.Send("a", over));
        Assert.Equal(Limit, error.Limit);
        Assert.Contains("nothing was sent", error.Message);
        Assert.Throws<FrameTooLargeException>(() => b.Send(["a", "a"], over));
        Assert.Throws<FrameTooLargeException>(() => b.Send("a", new { s = new string('x', 20 * 1024 * 1024) }));

        var next = Wait.First(a.Messages);
        Assert.True(b.Send("a", atLimit));
        Assert.Equal(Limit - 8, ((string)(await next).Packet["s"]!).Length);
        var marker = Wait.First(a.Messages);
        Assert.True(b.Send("a", new { good = 1 }));
        Assert.Equal(1, (int)(await marker).Packet["good"]!);
        Assert.Empty(lost); // the link never dropped
        Assert.Equal(["b"], a.Peers);
    }

    [Fact]
    public async Task A_bus_event_over_MaxPacketSize_is_refused_at_the_emit_and_later_events_arrive()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(MeshProtocol.Native));
        var b = await kit.StartAsync("b", Options(MeshProtocol.Native));
        await b.ConnectAsync(a.Info!).For();
        await a.WhenConnectedAsync("b").For();
        var lost = new ConcurrentQueue<string>();
        using var watch = b.PeerDisconnected.Subscribe(lost.Enqueue);

        var error = Assert.Throws<FrameTooLargeException>(() => a.Emit("big", new string('x', Limit)));
        Assert.Contains("'big'", error.Message);
        Assert.Throws<FrameTooLargeException>(() => a.Emit("big", new string('x', 20 * 1024 * 1024)));
        Assert.Throws<ArgumentException>(() => a.Emit(string.Empty, 1));

        // Nothing of them went out: the first event b gets is the next one, numbered as if they had never been tried.
        var first = Wait.First(b.Events);
        a.Emit("after", 1);
        var e = await first;
        Assert.Equal("after", e.Name);
        Assert.Equal(1UL, a.BusState("b")!.Value.Sent);
        Assert.Empty(lost);
    }

    [Fact]
    public async Task An_event_whose_path_grows_past_what_the_next_peer_reads_is_delivered_there_reported_and_not_forwarded()
    {
        // a - hop - c, with a relay id long enough that the forwarded body outgrows the reader's slack.
        var relayId = new string('r', 200);
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(MeshProtocol.Native));
        var hop = await kit.StartAsync(relayId, Options(MeshProtocol.Native));
        var c = await kit.StartAsync("c", Options(MeshProtocol.Native));
        await hop.ConnectAsync(a.Info!).For();
        await c.ConnectAsync(hop.Info!).For();
        await a.WhenConnectedAsync(relayId).For();
        await hop.WhenConnectedAsync("c").For();

        var error = Wait.First(hop.Errors);
        var lost = new ConcurrentQueue<string>();
        using var watchC = c.PeerDisconnected.Subscribe(lost.Enqueue);
        var atC = new ConcurrentQueue<string>();
        using var seen = c.Events.Subscribe(e => atC.Enqueue(e.Name));

        // An argument that fits at a (a 4,060-byte body) but not once the hop added its 200-character id to the path
        // (4,263 bytes, over the 4,096 + 64 a peer reads).
        var atHop = Wait.First(hop.Event("wide"));
        a.Emit("wide", new string('x', Limit - 120));
        Assert.Equal("wide", (await atHop).Name);
        var reported = Assert.IsType<FrameTooLargeException>(await error);
        Assert.Contains("not forwarded", reported.Message);

        var marker = Wait.First(c.Events);
        a.Emit("small", 1);
        Assert.Equal("small", (await marker).Name);
        Assert.Equal(["small"], atC);
        Assert.Empty(lost);
    }

    [Fact]
    public async Task A_refused_handshake_nobody_awaits_is_not_an_unobserved_task_exception()
    {
        var unobserved = new ConcurrentQueue<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> handler = (_, e) =>
        {
            if (e.Exception.InnerExceptions.Any(static x => x is PeerRefusedException { Reason: PeerRefusal.Self }))
            {
                unobserved.Enqueue(e.Exception);
            }
        };
        TaskScheduler.UnobservedTaskException += handler;
        try
        {
            await ConnectToItselfAsync();
            for (var i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            Assert.Empty(unobserved);
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= handler;
        }
    }

    private static async Task ConnectToItselfAsync()
    {
        await using var kit = new MeshTestKit();
        var a = await kit.StartAsync("a", Options(MeshProtocol.Native));
        var refused = Wait.First(a.NodeEvents, e => e.Kind == NodeEventKind.Refused);
        var error = await Assert.ThrowsAsync<PeerRefusedException>(() => a.ConnectAsync(a.Info!).For());
        Assert.Equal(PeerRefusal.Self, error.Reason);
        await refused; // the accepting side's handshake failed too (the task nobody awaits)
    }
}
