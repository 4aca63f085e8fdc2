using System.Net;
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using System.Reactive.Subjects;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Native protocol: a client's first link that drops before the client reads its Welcome. The server created the
/// session and its application may already have sent to it; the client, which never learnt the id, must find that
/// session on its next link (it proposed the id in its Hello) rather than be handed a new one while the sends wait for
/// a client that never comes.
/// </summary>
public sealed class FirstHandshakeTests : IAsyncLifetime
{
    private readonly UhuraServer _server = new();
    private readonly ReplaySubject<Connection> _connections = new();

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_connections);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    [Fact]
    public async Task What_the_server_sent_on_a_first_link_the_client_lost_before_its_Welcome_arrives_on_the_next_link_once_and_in_order()
    {
        const int count = 50;
        var sends = new List<Task>();
        var firstSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.Connections.Take(1).Subscribe(connection =>
        {
            for (var i = 0; i < count; i++)
            {
                sends.Add(connection.Send("s", i));
            }

            firstSent.TrySetResult();
        });

        // The client's first link reads nothing: it fails once the server's application has sent on it.
        var transport = new FirstLinkLostTransport(SocketTransport.Instance, firstSent.Task);
        await using var client = UhuraClient.Create(_server.Uri!, new UhuraClientOptions
        {
            Transport = transport,
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(20) },
        });
        var (received, all) = Collect(client.Event("s"), count);

        await client.StartAsync().For();
        await all.For();
        await Task.WhenAll(sends).For(); // acknowledged by the client: none failed as lost

        Assert.Equal(Enumerable.Range(0, count), received);
        Assert.Equal(2, transport.Connections);
        var connections = await _connections.Take(2).ToList().ToTask().For();
        Assert.Equal(connections[0].Session.Id, client.Session.Id); // the session the server created on the lost link
        Assert.Equal(connections[0].Session.Id, connections[1].Session.Id);
    }

    [Fact]
    public async Task A_link_dropped_while_its_Welcome_is_handled_leaves_the_next_link_to_resume_the_session_with_the_servers_sends()
    {
        // A Session subscriber that forces a reconnect when the Welcome names the session drops the link around the
        // handling of that Welcome (subscribers are called from a queue of their own, so the drop lands anywhere from
        // the Welcome to the events after it, as a cut would under load). The next Hello must still continue the
        // session's streams: what the server's application sent to the session waits for that link and arrives, once
        // and in order, never failed as lost by a fresh start.
        const int count = 50;
        var sends = new List<Task>();
        _server.Connections.Take(1).Subscribe(connection =>
        {
            for (var i = 0; i < count; i++)
            {
                sends.Add(connection.Send("s", i));
            }
        });

        await using var client = UhuraClient.Create(_server.Uri!, new UhuraClientOptions
        {
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(20) },
        });
        var reconnected = 0;
        var reconnectCalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Session.Changes.Subscribe(change =>
        {
            if (change.Key == UhuraSession.IdKey && Interlocked.Exchange(ref reconnected, 1) == 0)
            {
                client.Reconnect();
                reconnectCalled.TrySetResult();
            }
        });
        var (received, all) = Collect(client.Event("s"), count);

        await client.StartAsync().For();
        await all.For();
        await Task.WhenAll(sends).For(); // acknowledged by the client: none failed as lost
        await reconnectCalled.Task.For(); // the subscriber's queue may run after the events were delivered

        Assert.Equal(1, Volatile.Read(ref reconnected));
        Assert.Equal(Enumerable.Range(0, count), received);
        var connections = await _connections.Take(2).ToList().ToTask().For();
        Assert.Equal(connections[0].Session.Id, client.Session.Id);
        Assert.True(connections[1].Resumed);
    }

    [Theory]
    [InlineData("short")]
    [InlineData("has spaces in it, and more than 16")]
    [InlineData("")]
    public async Task A_malformed_proposed_id_gets_a_session_id_of_the_servers_choosing(string proposed)
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.WriteAsync(Hello(proposed));
        var connection = await Wait.First(_connections);
        Assert.NotEqual(proposed, connection.Session.Id);
        Assert.Equal(24, connection.Session.Id!.Length);
    }

    [Fact]
    public async Task A_well_formed_proposed_id_names_the_new_session()
    {
        const string proposed = "client-chosen_Id-0123456789";
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.WriteAsync(Hello(proposed));
        var connection = await Wait.First(_connections);
        Assert.Equal(proposed, connection.Session.Id);
        Assert.False(connection.Resumed);
    }

    /// <summary>The first argument of each event, and a task that completes once <paramref name="count"/> arrived.</summary>
    private static (List<int> Received, Task All) Collect(IObservable<UhuraEvent> events, int count)
    {
        var received = new List<int>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        events.Subscribe(e =>
        {
            lock (received)
            {
                received.Add(e.Arg<int>(0));
                if (received.Count == count)
                {
                    all.TrySetResult();
                }
            }
        });
        return (received, all.Task);
    }

    private static byte[] Hello(string sessionId)
    {
        using var buffer = new PooledBufferWriter();
        buffer.Write(NativePreface.Bytes);
        NativeFrameWriter.WriteHello(buffer, NativePreface.Version, NativeFeatures.Acks | NativeFeatures.Resume | NativeFeatures.Propose, sessionId, 0, 0, "{}"u8);
        return buffer.ToArray();
    }

    /// <summary>The first connection's reads wait for <paramref name="cut"/>, then fail: the client never reads its Welcome.</summary>
    private sealed class FirstLinkLostTransport(ITransport inner, Task cut) : ITransport
    {
        private int _connections;

        public int Connections => Volatile.Read(ref _connections);

        public ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
            => inner.BindAsync(endPoint, cancellationToken);

        public async ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
        {
            var stream = await inner.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return Interlocked.Increment(ref _connections) == 1 ? new LostStream(stream, cut) : stream;
        }
    }

    private sealed class LostStream(Stream inner, Task cut) : DelegatingStream(inner)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await cut.WaitAsync(cancellationToken).ConfigureAwait(false);
            throw new IOException("the test cut the first link before its Welcome was read");
        }
    }
}
