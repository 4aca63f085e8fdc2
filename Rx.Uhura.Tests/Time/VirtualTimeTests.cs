using System.Net;
using System.Net.Sockets;
using Microsoft.Reactive.Testing;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Time;

public class SchedulerTimeProviderTests : ReactiveTest
{
    [Fact]
    public void The_clock_follows_the_scheduler()
    {
        var scheduler = new TestScheduler();
        var time = new SchedulerTimeProvider(scheduler);
        var start = time.GetTimestamp();
        scheduler.AdvanceBy(TimeSpan.FromSeconds(3).Ticks);
        Assert.Equal(TimeSpan.FromSeconds(3), time.GetElapsedTime(start));
        Assert.Equal(scheduler.Now, time.GetUtcNow());
    }

    [Fact]
    public void A_timer_fires_at_its_due_time_and_then_every_period_until_disposed()
    {
        var scheduler = new TestScheduler();
        var time = new SchedulerTimeProvider(scheduler);
        var fired = new List<long>();
        var timer = time.CreateTimer(_ => fired.Add(scheduler.Clock), null, TimeSpan.FromTicks(100), TimeSpan.FromTicks(50));
        scheduler.AdvanceTo(260);
        Assert.Equal([100L, 150, 200, 250], fired);
        timer.Dispose();
        scheduler.AdvanceTo(1000);
        Assert.Equal(4, fired.Count);
    }

    [Fact]
    public void Changing_a_timer_replaces_its_schedule()
    {
        var scheduler = new TestScheduler();
        var time = new SchedulerTimeProvider(scheduler);
        var fired = new List<long>();
        var timer = time.CreateTimer(_ => fired.Add(scheduler.Clock), null, TimeSpan.FromTicks(100), Timeout.InfiniteTimeSpan);
        timer.Change(TimeSpan.FromTicks(300), Timeout.InfiniteTimeSpan);
        scheduler.AdvanceTo(1000);
        Assert.Equal([300L], fired);
    }

    [Fact]
    public async Task A_cancellation_token_source_on_the_virtual_clock_cancels_only_when_time_is_advanced()
    {
        var scheduler = new TestScheduler();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5), new SchedulerTimeProvider(scheduler));
        scheduler.AdvanceBy(TimeSpan.FromSeconds(4.9).Ticks);
        Assert.False(cts.IsCancellationRequested);
        scheduler.AdvanceBy(TimeSpan.FromSeconds(0.1).Ticks);
        Assert.True(cts.IsCancellationRequested);
        await Task.CompletedTask;
    }
}

public class CloseTimeoutTests
{
    [Fact]
    public async Task Disconnect_waits_for_acknowledgements_until_the_close_timeout_on_the_virtual_clock()
    {
        var scheduler = new Microsoft.Reactive.Testing.TestScheduler();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();

        var client = UhuraClient.Connect((IPEndPoint)listener.LocalEndPoint!, new UhuraClientOptions
        {
            Protocol = WireProtocol.NodeUhura, // the scripted peer speaks the Node wire
            Connection = ConnectionOptions.Default with { TimeProvider = new SchedulerTimeProvider(scheduler), CloseTimeout = TimeSpan.FromSeconds(5) },
        });

        // A server that completes the handshake and then never acknowledges anything.
        await using var server = RawPeer.Wrap(await listener.AcceptAsync().For());
        await server.ReadUntilAsync("\"start\"");
        await server.WriteAsync("[\n[\"_set\",\"sessionID\",\"abcdefghijklmnopqrstuvwx\"]\n,\n{\"args\":[\"connect\",{\"objectMode\":true,\"enableAcks\":true}]}");
        await client.WhenConnectedAsync().For();

        var send = client.Send("never-acked");
        await server.ReadUntilAsync("never-acked");
        var disconnect = client.Disconnect();

        scheduler.AdvanceBy(TimeSpan.FromSeconds(4).Ticks);
        Assert.False(disconnect.IsCompleted);
        Assert.False(send.IsCompleted);

        scheduler.AdvanceBy(TimeSpan.FromSeconds(1).Ticks);
        await disconnect.For();
        await Assert.ThrowsAsync<ConnectionLostException>(() => send);
        Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
    }

    [Fact]
    public async Task A_server_that_never_completes_the_handshake_fails_the_connect_after_the_connect_timeout()
    {
        var scheduler = new Microsoft.Reactive.Testing.TestScheduler();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = UhuraClient.Connect((IPEndPoint)listener.LocalEndPoint!, new UhuraClientOptions
        {
            Protocol = WireProtocol.NodeUhura,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            Connection = ConnectionOptions.Default with { TimeProvider = new SchedulerTimeProvider(scheduler) },
        });
        await using var silent = RawPeer.Wrap(await listener.AcceptAsync().For());
        await silent.ReadUntilAsync("\"start\"");

        var connected = client.WhenConnectedAsync();
        scheduler.AdvanceBy(TimeSpan.FromSeconds(9).Ticks);
        Assert.False(connected.IsCompleted);
        scheduler.AdvanceBy(TimeSpan.FromSeconds(1).Ticks);
        var error = await Assert.ThrowsAsync<UhuraException>(() => connected.For());
        Assert.Contains("handshake", error.Message);
        Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
    }
}
