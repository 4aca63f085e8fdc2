namespace Rx.Uhura.Tests.Core;

/// <summary>
/// A burst held behind a slow subscriber fills the sender's sends awaiting acknowledgement (the native wire's list, the
/// Node wire's table); once all are
/// acknowledged, the link does not keep the burst's worth of slots (a long-lived connection that once sent a burst would
/// otherwise hold them for the rest of its life).
/// </summary>
public sealed class BurstRetentionTests
{
    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task After_a_burst_behind_a_blocked_subscriber_the_sender_does_not_keep_its_slots(WireProtocol wire)
    {
        await using var server = new UhuraServer();
        using var gate = new ManualResetEventSlim();
        var seen = new List<int>();
        server.Connections.Subscribe(connection => connection.Event("n").Subscribe(e =>
        {
            gate.Wait(Wait.Timeout);
            seen.Add(e.Arg<int>(0));
        }));
        await server.ListenAsync("tcp://127.0.0.1:0");
        await using var client = await UhuraClient.ConnectAsync(server.Uri!, new UhuraClientOptions { Protocol = wire });

        const int count = 5_000;
        for (var i = 0; i < count - 1; i++)
        {
            Assert.True(client.Post("n", i));
        }

        var last = client.Send("n", count - 1);
        var link = client.Connection!;
        await Wait.First(System.Reactive.Linq.Observable.Interval(TimeSpan.FromMilliseconds(5)), _ => link.UnackedSlots >= 1_000); // written, not acknowledged

        gate.Set();
        await last.For();

        Assert.Equal(Enumerable.Range(0, count), seen);
        Assert.InRange(link.UnackedSlots, 0, 2 * Connection.KeepUnackedSlots);
    }
}
