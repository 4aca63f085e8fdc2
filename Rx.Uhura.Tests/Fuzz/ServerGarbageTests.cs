using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reactive.Linq;
using System.Text;
using Rx.Uhura.Protocol.Native;
using Rx.Uhura.Tests.Core;
using Xunit.Abstractions;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>
/// A server under 1,000 connections sending seeded garbage on one wire while a well-behaved client keeps exchanging
/// events: each garbage connection is closed with a typed error, the good client never fails, memory stays bounded.
/// </summary>
public class ServerGarbageTests(ITestOutputHelper output)
{
    private const long MaxMessage = 4096;

    /// <summary>Managed memory the server may keep after the flood (generous: other tests share the process).</summary>
    private const long MemoryBound = 256L * 1024 * 1024;

    [Fact]
    public Task A_native_server_closes_every_garbage_connection_with_a_typed_error_and_keeps_serving()
        => RunAsync(WireProtocol.Native, "tcp://127.0.0.1:0", NativeGarbage);

    [Fact]
    public Task A_node_wire_server_closes_every_garbage_connection_with_a_typed_error_and_keeps_serving()
        => RunAsync(WireProtocol.NodeUhura, "tcp://127.0.0.1:0", NodeWireGarbage);

    [Fact]
    public Task A_socket_ipc_server_closes_every_garbage_connection_with_a_typed_error_and_keeps_serving()
    {
        var dir = Directory.CreateTempSubdirectory("uhura-fuzz-").FullName;
        return RunAsync(WireProtocol.SocketIpc, "unix://" + Path.Combine(dir, "ipc.sock"), SocketIpcGarbage)
            .ContinueWith(t => { Directory.Delete(dir, recursive: true); return t; }, TaskScheduler.Default).Unwrap();
    }

    /// <summary>Bytes the native reader refuses: bad magic, bad version, huge or zero lengths, unknown types, frames before Hello, truncated bodies.</summary>
    private static byte[] NativeGarbage(Random rng)
    {
        var preface = NativePreface.Bytes.ToArray();
        var tail = GarbageFlood.NonNul(rng, rng.Next(64));
        var frame = new ArrayBufferWriter<byte>();
        switch (rng.Next(7))
        {
            case 0:
                return [0x00, (byte)rng.Next(0x53, 0x100), .. tail];
            case 1:
                return [0x00, 0x52, 0x58, 0x55, (byte)rng.Next(2, 256), .. tail];
            case 2:
                return [.. preface, 0xFF, 0xFF, 0xFF, 0xFF, .. tail];
            case 3:
                return [.. preface, 0, 0, 0, 0, .. tail];
            case 4:
                return [.. preface, 0, 0, 0, 1, (byte)rng.Next(0x20, 0x100)];
            case 5:
                NativeFrameWriter.WriteEvent(frame, 1, "ping", "[1]"u8);
                return [.. preface, .. frame.WrittenSpan];
            default:
                var length = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(length, (uint)(1 + tail.Length % 4));
                return [.. preface, .. length, (byte)NativeFrameType.Hello, .. tail.AsSpan(0, tail.Length % 4)];
        }
    }

    /// <summary>Streams the Node wire refuses: not an array, oversized or too deep elements, invalid UTF-8, lone surrogates, events before start.</summary>
    private static byte[] NodeWireGarbage(Random rng) => rng.Next(7) switch
    {
        0 => [(byte)rng.Next('a', 'z' + 1), .. GarbageFlood.NonNul(rng, rng.Next(64))],
        1 => Encoding.ASCII.GetBytes("[" + new string('[', (int)MaxMessage + 1 + rng.Next(100))),
        2 => [.. "[[\""u8, .. Encoding.ASCII.GetBytes(GarbageFlood.Alnum(rng, rng.Next(20))), 0xFF, .. "\"]"u8],
        3 => Encoding.ASCII.GetBytes("[[\"\\ud800" + GarbageFlood.Alnum(rng, rng.Next(10)) + "\",1]"),
        4 => Encoding.ASCII.GetBytes("[" + Nest(100 + rng.Next(100))),
        5 => Encoding.ASCII.GetBytes("[[\"ping\",tru" + GarbageFlood.Alnum(rng, rng.Next(10)) + "]"),
        _ => Encoding.ASCII.GetBytes("[{\"args\":" + rng.Next() + "}]"),
    };

    /// <summary>Frames socket-ipc refuses: oversized, not objects, no string topic, lone surrogates, too deep, invalid UTF-8.</summary>
    private static byte[] SocketIpcGarbage(Random rng) => rng.Next(6) switch
    {
        0 => GarbageFlood.NonNul(rng, (int)MaxMessage + 3 + rng.Next(1000)),
        1 => [.. "}"u8, .. Encoding.ASCII.GetBytes(GarbageFlood.Alnum(rng, rng.Next(40))), 0, 0],
        2 => Encoding.ASCII.GetBytes("{\"topic\":\"\\udc00" + GarbageFlood.Alnum(rng, rng.Next(10)) + "\"}\0\0"),
        3 => Encoding.ASCII.GetBytes("{\"topic\":" + rng.Next() + "}\0\0"),
        4 => Encoding.ASCII.GetBytes("{\"topic\":\"a\",\"message\":" + Nest(100 + rng.Next(100)) + "}\0\0"),
        _ => [.. "{\"topic\":\""u8, 0xC0, 0x80, .. "\"}\0\0"u8],
    };

    /// <summary><paramref name="depth"/> nested arrays, closed.</summary>
    private static string Nest(int depth) => new string('[', depth) + new string(']', depth);

    private async Task RunAsync(WireProtocol wire, string uri, Func<Random, byte[]> garbage)
    {
        var clock = Stopwatch.StartNew();
        var connection = ConnectionOptions.Default with { MaxMessageSize = MaxMessage };
        await using var server = new UhuraServer(UhuraServerOptions.Default with { Connection = connection, Protocol = wire == WireProtocol.SocketIpc ? wire : null });
        var errors = new ConcurrentDictionary<string, UhuraException>();
        var untyped = new ConcurrentQueue<UhuraException>();
        var allErrors = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var errorLog = server.Errors.Subscribe(ex =>
        {
            if (ex.ConnectionId is { } id)
            {
                errors[id] = ex;
                if (errors.Count >= GarbageFlood.Connections)
                {
                    allErrors.TrySetResult();
                }
            }
            else
            {
                untyped.Enqueue(ex);
            }
        });
        using var echo = server.Event("echo").Subscribe(e => _ = e.Connection!.Send("echoed", e.Args[0]));
        await server.ListenAsync(uri);
        var before = GarbageFlood.ManagedMemory();

        var accepted = Wait.First(server.Connections);
        using var good = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Protocol = wire });
        await good.WhenConnectedAsync().For();
        var goodId = (await accepted).Id;
        var states = new ConcurrentQueue<ConnectionStatus>();
        using var stateLog = good.State.Subscribe(state => states.Enqueue(state.Status));

        // The good client exchanges events, one round trip after the other, for as long as the flood lasts.
        using var stop = new CancellationTokenSource();
        var trips = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested || n < 10)
            {
                var reply = Wait.First(good.Event("echoed"), e => (int)e.Args[0] == n);
                await good.Send("echo", n).For();
                await reply;
                n++;
            }

            return n;
        });

        var stillOpen = await GarbageFlood.RunAsync(server.EndPoint!, garbage);
        stop.Cancel(); // the good client still does its first ten round trips if the flood was quicker

        var roundTrips = await trips.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(stillOpen.Length == 0, $"{stillOpen.Length} garbage connections still open:\n{string.Join('\n', stillOpen.Take(3))}");
        await Task.WhenAny(allErrors.Task, Task.Delay(Wait.Timeout)); // the count is asserted below

        Assert.False(errors.ContainsKey(goodId), $"the good connection failed: {(errors.TryGetValue(goodId, out var e) ? e : null)}");
        Assert.Empty(untyped);
        Assert.Equal(GarbageFlood.Connections, errors.Count);
        Assert.All(states, status => Assert.Equal(ConnectionStatus.Connected, status));
        var after = GarbageFlood.ManagedMemory();
        var kinds = string.Join(", ", errors.Values.GroupBy(x => x.GetType().Name).Select(g => $"{g.Count()} {g.Key}"));
        output.WriteLine($"{wire}: {GarbageFlood.Connections} garbage connections closed ({kinds}); {roundTrips} round trips meanwhile; managed memory {before / 1024} KiB before, {after / 1024} KiB after; {clock.Elapsed.TotalSeconds:F1} s.");
        Assert.True(after - before < MemoryBound, $"managed memory grew by {(after - before) / 1024} KiB");
    }
}
