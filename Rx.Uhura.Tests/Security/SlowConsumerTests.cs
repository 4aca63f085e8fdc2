using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Security;

/// <summary>A client that stops reading: the server's buffer for it is bounded, the policy applies, other clients go on.</summary>
public sealed class SlowConsumerTests : IAsyncLifetime
{
    private static readonly string Blob = new('x', 64 * 1024);
    private readonly List<IAsyncDisposable> _owned = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }
    }

    private async Task<(UhuraServer Server, IObservable<int> Received, Connection Slow)> StartAsync(SlowConsumerPolicy policy)
    {
        var server = new UhuraServer(new UhuraServerOptions
        {
            Connection = ConnectionOptions.Default with { MaxOutboundBufferBytes = 256 * 1024, SlowConsumerPolicy = policy },
        });
        _owned.Add(server);
        var ready = new System.Reactive.Subjects.ReplaySubject<Connection>();
        server.Connections.Subscribe(ready);
        await server.ListenAsync("tcp://127.0.0.1:0");

        var good = await UhuraClient.ConnectAsync(server.Uri!).For();
        _owned.Add(good);
        var received = good.Event("blob").Select((_, i) => i + 1).Replay(1);
        _owned.Add(new SubscriptionBox(received.Connect()));

        // The slow client: a bare socket with a small receive buffer that completes the Node handshake and never reads.
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Parse(server.Uri!)).For();
        var slow = RawPeer.Wrap(socket);
        _owned.Add(slow);
        await slow.HandshakeAsync();
        return (server, received, await Wait.First(ready.Skip(1)));
    }

    [Fact]
    public async Task With_Disconnect_the_slow_client_is_dropped_with_a_reason_and_the_others_get_everything()
    {
        var (server, received, slow) = await StartAsync(SlowConsumerPolicy.Disconnect);
        var dropped = Wait.First(server.Errors.OfType<SlowConsumerException>());
        var sent = 0;
        while (!dropped.IsCompleted && sent < 2000)
        {
            server.Broadcast("blob", Blob);
            sent++;
            await Wait.First(received, count => count == sent); // the good client keeps up; the slow one reads nothing
        }

        Assert.True(dropped.IsCompleted, $"not dropped after {sent} broadcasts of 64 KiB");
        Assert.Contains("read too slowly", (await dropped).Message);
        var info = await Wait.First(slow.Disconnected);
        Assert.Equal(DisconnectReason.SlowConsumer, info.Reason);
        Assert.IsType<SlowConsumerException>(info.Error);
        Assert.Equal(1, server.Broadcast("blob", Blob));
        sent++;
        await Wait.First(received, count => count == sent);
    }

    [Fact]
    public async Task With_FailSend_sends_to_the_slow_client_fail_it_stays_and_the_others_get_everything()
    {
        var (server, received, slow) = await StartAsync(SlowConsumerPolicy.FailSend);
        var sent = 0;
        var reached = 2;
        while (reached == 2 && sent < 2000)
        {
            reached = server.Broadcast("blob", Blob);
            sent++;
            await Wait.First(received, count => count == sent); // the good client keeps up; the slow one reads nothing
        }

        Assert.Equal(1, reached); // the slow client's buffer is full: its copy failed, the good client's did not
        Assert.Equal(2, server.ActiveConnections.Count); // nobody was disconnected
        Assert.True(slow.IsConnected);
        await Wait.First(received, count => count == sent);
    }

    [Theory]
    [InlineData(SlowConsumerPolicy.FailSend)]
    [InlineData(SlowConsumerPolicy.Disconnect)]
    public async Task A_client_that_reads_but_never_acknowledges_holds_at_most_MaxPendingAcks_sends(SlowConsumerPolicy policy)
    {
        var server = new UhuraServer(new UhuraServerOptions
        {
            Connection = ConnectionOptions.Default with { MaxPendingAcks = 10, SlowConsumerPolicy = policy },
        });
        _owned.Add(server);
        var ready = new System.Reactive.Subjects.ReplaySubject<Connection>();
        server.Connections.Subscribe(ready);
        await server.ListenAsync("tcp://127.0.0.1:0");
        var silent = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Parse(server.Uri!));
        _owned.Add(silent);
        await silent.HandshakeAsync(); // asks for acks, then never sends one
        var connection = await Wait.First(ready);

        var sends = Enumerable.Range(0, 10).Select(i => connection.Send("n", i)).ToList();
        var eleventh = connection.Send("n", 10);
        if (policy == SlowConsumerPolicy.FailSend)
        {
            var error = await Assert.ThrowsAsync<OutboundBufferFullException>(() => eleventh.For());
            Assert.Contains("acknowledgement", error.Message);
            Assert.True(connection.IsConnected);
            Assert.All(sends, send => Assert.False(send.IsCompleted)); // still waiting for their acks
        }
        else
        {
            var info = await Wait.First(connection.Disconnected);
            Assert.Equal(DisconnectReason.SlowConsumer, info.Reason);
            Assert.Contains("MaxPendingAcks 10", info.Error!.Message);
        }
    }

    [Fact]
    public async Task A_subscriber_that_blocks_stalls_only_its_own_connection_and_then_gets_everything_in_order()
    {
        using var gate = new ManualResetEventSlim();
        var server = new UhuraServer();
        _owned.Add(server);
        var afterSlow = new System.Reactive.Subjects.ReplaySubject<int>();
        server.Connections.Subscribe(c =>
        {
            c.Event("slow").Subscribe(_ => gate.Wait(Wait.Timeout)); // blocks this connection's read loop
            c.Event("after").Subscribe(e => afterSlow.OnNext(e.Arg<int>(0)));
            c.Event("ping").Subscribe(_ => c.Post("pong"));
        });
        await server.ListenAsync("tcp://127.0.0.1:0");
        var stalled = await UhuraClient.ConnectAsync(server.Uri!).For();
        _owned.Add(stalled);
        var other = await UhuraClient.ConnectAsync(server.Uri!).For();
        _owned.Add(other);

        stalled.Post("slow");
        for (var i = 0; i < 100; i++)
        {
            stalled.Post("after", i);
        }

        // While the handler blocks, the other connection is served.
        for (var i = 0; i < 5; i++)
        {
            var pong = Wait.First(other.Event("pong"));
            other.Post("ping");
            await pong;
        }

        var seenWhileBlocked = 0;
        using (afterSlow.Subscribe(_ => Interlocked.Increment(ref seenWhileBlocked)))
        {
            Assert.Equal(0, Volatile.Read(ref seenWhileBlocked)); // nothing past the blocked event was delivered
        }

        gate.Set();
        Assert.Equal(Enumerable.Range(0, 100), await afterSlow.Take(100).ToList().ToTask().For());
    }

    private sealed class SubscriptionBox(IDisposable subscription) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            subscription.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
