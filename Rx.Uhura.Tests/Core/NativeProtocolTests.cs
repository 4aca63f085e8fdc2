using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Text;
using Microsoft.Reactive.Testing;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol.Native;

namespace Rx.Uhura.Tests.Core;

/// <summary>What only the native protocol does: detection, resume in both directions, heartbeats, its own bad input.</summary>
public sealed class NativeProtocolTests : IAsyncLifetime
{
    private readonly UhuraServer _server = new(new UhuraServerOptions { Connection = ConnectionOptions.Default with { MaxMessageSize = 4096 } });
    private readonly ReplaySubject<Connection> _connections = new();
    private readonly ReplaySubject<UhuraException> _errors = new();

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(_connections);
        _server.Errors.Subscribe(_errors);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    private static byte[] Frames(Action<PooledBufferWriter> write)
    {
        using var buffer = new PooledBufferWriter();
        write(buffer);
        return buffer.ToArray();
    }

    private static byte[] Hello(NativeFeatures features = NativeFeatures.Acks, uint heartbeatMs = 0) => Frames(b =>
    {
        b.Write(NativePreface.Bytes);
        NativeFrameWriter.WriteHello(b, NativePreface.Version, features, string.Empty, 0, heartbeatMs, "{}"u8);
    });

    [Fact]
    public async Task One_endpoint_serves_native_and_node_wire_clients_side_by_side()
    {
        _server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Send("pong", c.Wire.ToString())));
        await using var native = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Protocol = WireProtocol.Native });
        await using var node = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Protocol = WireProtocol.NodeUhura });
        var a = Wait.First(native.Event("pong"));
        var b = Wait.First(node.Event("pong"));
        await Task.WhenAll(native.Send("ping"), node.Send("ping")).For();
        Assert.Equal("Native", (await a).Arg<string>(0));
        Assert.Equal("NodeUhura", (await b).Arg<string>(0));
    }

    [Fact]
    public async Task Events_the_server_sent_while_the_link_dropped_are_resent_on_resume_and_delivered_once_in_order()
    {
        const int count = 3000;
        var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions { Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) } });
        await using var _ = client;
        var received = new List<int>();
        var all = new TaskCompletionSource();
        client.Event("n").Subscribe(e =>
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
        await client.WhenConnectedAsync().For(); // the client knows its session, so the next link can resume it
        var connection = await Wait.First(_connections);
        var sends = new Task[count];
        for (var i = 0; i < count; i++)
        {
            sends[i] = connection.Send("n", i);
            if (i == count / 2)
            {
                client.Connection?.Dispose(); // the client's socket dies with server events in flight
            }
        }

        var states = new List<string>();
        client.State.Subscribe(st => { lock (states) { states.Add(st + " " + st.Disconnect?.Error?.Message + " " + st.Error?.Message); } });
        try
        {
            await Task.WhenAll(sends).For(); // every server send is acknowledged, some of them on the resumed link
            await all.Task.For();
        }
        catch (TimeoutException)
        {
            lock (received)
            {
                lock (states)
                {
                    Assert.Fail($"received {received.Count} (last {received.LastOrDefault()}), pending sends {sends.Count(t => !t.IsCompleted)} first {Array.FindIndex(sends, t => !t.IsCompleted)}, faulted {sends.Count(t => t.IsFaulted)}; states: {string.Join(" | ", states)}");
                }
            }
        }
        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, count), received);
        }

        Assert.True((await Wait.First(_connections.Skip(1))).Resumed);
    }

    [Fact]
    public async Task A_silent_peer_is_dropped_after_two_heartbeat_intervals_on_the_virtual_clock()
    {
        var scheduler = new TestScheduler();
        await using var server = new UhuraServer(new UhuraServerOptions
        {
            SessionTimeToLive = null,
            Connection = ConnectionOptions.Default with { TimeProvider = new SchedulerTimeProvider(scheduler) },
        });
        var connections = new ReplaySubject<Connection>();
        server.Connections.Subscribe(connections);
        await server.ListenAsync("tcp://127.0.0.1:0");

        await using var peer = await RawPeer.ConnectAsync(server.EndPoint!);
        await peer.WriteAsync(Hello(NativeFeatures.Acks | NativeFeatures.Heartbeats, heartbeatMs: 1000));
        var connection = await Wait.First(connections);
        var welcomeType = new byte[] { (byte)NativeFrameType.Welcome };
        await peer.ReadBytesUntilAsync(welcomeType); // the Welcome write is done: the server's idle clock starts at 0
        var pingBytes = Frames(b => NativeFrameWriter.WritePing(b, 0)).Take(5).ToArray(); // length + type

        scheduler.AdvanceBy(TimeSpan.FromMilliseconds(1500).Ticks);
        await peer.ReadBytesUntilAsync(pingBytes); // idle for an interval: the server pings
        Assert.True(connection.IsConnected);

        scheduler.AdvanceBy(TimeSpan.FromMilliseconds(500).Ticks);
        var info = await Wait.First(connection.Disconnected);
        Assert.Equal(DisconnectReason.TransportError, info.Reason);
        Assert.IsType<TimeoutException>(info.Error);
    }

    [Fact]
    public async Task A_wrong_magic_after_the_zero_byte_is_a_decode_error()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.WriteAsync([0x00, (byte)'N', (byte)'O', (byte)'P', 0x01]);
        await Wait.First(_errors.OfType<DecodeException>());
        await peer.ReadToEndAsync();
    }

    [Fact]
    public async Task A_declared_frame_length_over_the_limit_fails_before_the_body_arrives()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.WriteAsync(Hello());
        await peer.WriteAsync([0x00, 0x10, 0x00, 0x00]); // 1 MiB declared, limit 4 KiB
        Assert.Equal(4096, (await Wait.First(_errors.OfType<FrameTooLargeException>())).Limit);
        await peer.ReadToEndAsync();
    }

    [Fact]
    public async Task A_hello_whose_session_json_is_not_utf8_is_a_decode_error()
    {
        // Found while writing the native fuzz test: the session JSON was decoded leniently, and the bad bytes became U+FFFD in the session.
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.WriteAsync(Frames(b =>
        {
            b.Write(NativePreface.Bytes);
            NativeFrameWriter.WriteHello(b, NativePreface.Version, NativeFeatures.None, string.Empty, 0, 0, [.. "{\"k\":\""u8, 0xFF, .. "\"}"u8]);
        }));
        Assert.Contains("UTF-8", (await Wait.First(_errors.OfType<DecodeException>())).Message);
        await peer.ReadToEndAsync();
    }

    [Fact]
    public async Task An_event_before_hello_is_a_protocol_error()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.WriteAsync(Frames(b =>
        {
            b.Write(NativePreface.Bytes);
            NativeFrameWriter.WriteEvent(b, 1, "early", "[]"u8);
        }));
        await Wait.First(_errors.OfType<ProtocolException>());
        await peer.ReadToEndAsync();
    }

    [Fact]
    public async Task A_sequence_gap_or_an_ack_beyond_what_was_sent_is_a_protocol_error_and_the_server_goes_on()
    {
        await using var peer = await RawPeer.ConnectAsync(_server.EndPoint!);
        await peer.WriteAsync(Hello());
        await Wait.First(_connections);
        await peer.WriteAsync(Frames(b => NativeFrameWriter.WriteAck(b, 99)));
        Assert.Contains("99", (await Wait.First(_errors.OfType<ProtocolException>())).Message);
        await peer.ReadToEndAsync();
        await using var healthy = await UhuraClient.ConnectAsync(_server.Uri!).For();
        await healthy.Send("still works").For();
    }

    [Fact]
    public async Task Hello_and_welcome_carry_the_session_so_both_sides_start_with_it()
    {
        await using var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions
        {
            InitialSession = new Dictionary<string, Newtonsoft.Json.Linq.JToken> { ["fromClient"] = 1 },
        });
        await client.WhenConnectedAsync().For();
        var connection = await Wait.First(_connections);
        Assert.Equal(1, connection.Session.Get<int>("fromClient"));
        Assert.Equal(connection.Session.Id, client.Session.Id);
        Assert.Equal(WireProtocol.Native, connection.Wire);
    }
}
