using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Rx.Uhura.Benchmarks.Compare;

/// <summary>
/// The machine's practical limit: bare TCP sockets on loopback, frames of a 4-byte big-endian length and the payload
/// <c>["ping",N]</c>, writes batched into 64 KiB buffers, a receiver that only counts frames. No library, no acks.
/// </summary>
public sealed class RawContender : IContender
{
    private const int BufferSize = 64 * 1024;
    private const int MaxFrame = 4 + 32;

    public string Name => "raw";

    public async Task<ScenarioResult?> RunAsync(Scenario scenario, BenchSettings settings, CancellationToken cancellationToken) => scenario switch
    {
        Scenario.Throughput => await ThroughputAsync(settings.ThroughputEvents, measureAllocations: false, cancellationToken),
        Scenario.Allocations => await ThroughputAsync(settings.AllocationEvents, measureAllocations: true, cancellationToken),
        Scenario.Rtt => await RttAsync(settings.RoundTrips, cancellationToken),
        Scenario.Fanout => await FanoutAsync(settings.FanoutClients, settings.FanoutEvents, cancellationToken),
        Scenario.IdleMemory => await IdleAsync(settings.IdleConnections, cancellationToken),
        _ => null,
    };

    /// <summary>Writes one frame <c>[len]["ping",n]</c> at <paramref name="destination"/>; returns its size.</summary>
    internal static int WriteFrame(Span<byte> destination, int n)
    {
        var body = destination[4..];
        "[\"ping\","u8.CopyTo(body);
        n.TryFormat(body[8..], out var digits, provider: System.Globalization.CultureInfo.InvariantCulture);
        body[8 + digits] = (byte)']';
        var length = 9 + digits;
        BinaryPrimitives.WriteInt32BigEndian(destination, length);
        return 4 + length;
    }

    private static async Task<(Socket Client, Socket Server)> PairAsync(Socket listener, CancellationToken cancellationToken)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync(cancellationToken);
        await client.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
        var server = await accept;
        server.NoDelay = true;
        return (client, server);
    }

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1024);
        return listener;
    }

    private static async Task SendFramesAsync(Socket socket, int count, byte[] buffer, CancellationToken cancellationToken)
    {
        var used = 0;
        for (var i = 0; i < count; i++)
        {
            if (BufferSize - used < MaxFrame)
            {
                await SendAllAsync(socket, buffer.AsMemory(0, used), cancellationToken);
                used = 0;
            }

            used += WriteFrame(buffer.AsSpan(used), i);
        }

        if (used > 0)
        {
            await SendAllAsync(socket, buffer.AsMemory(0, used), cancellationToken);
        }
    }

    private static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data[n..];
        }
    }

    private static async Task<ScenarioResult> ThroughputAsync(int events, bool measureAllocations, CancellationToken cancellationToken)
    {
        using var listener = Listen();
        var (client, server) = await PairAsync(listener, cancellationToken);
        using (client)
        using (server)
        {
            var sendBuffer = new byte[BufferSize];
            var reader = new FrameReader(server);
            var allocatedBefore = Measure.AllocatedBytes();
            var stopwatch = Stopwatch.StartNew();
            var receive = Task.Run(async () =>
            {
                long seen = 0;
                while (seen < events)
                {
                    seen += await reader.ReadFramesAsync(cancellationToken);
                }
            }, cancellationToken);
            await SendFramesAsync(client, events, sendBuffer, cancellationToken);
            await receive;
            stopwatch.Stop();
            var allocated = Measure.AllocatedBytes() - allocatedBefore;
            return measureAllocations ? Measure.Allocations(allocated, events) : Measure.Throughput(events, stopwatch.Elapsed);
        }
    }

    private static async Task<ScenarioResult> RttAsync(int roundTrips, CancellationToken cancellationToken)
    {
        using var listener = Listen();
        var (client, server) = await PairAsync(listener, cancellationToken);
        using (client)
        using (server)
        {
            using var echoStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var echo = Task.Run(async () =>
            {
                var reader = new FrameReader(server);
                var buffer = new byte[MaxFrame];
                for (var i = 0; i < roundTrips; i++)
                {
                    while (await reader.ReadFramesAsync(echoStop.Token) == 0)
                    {
                    }

                    var size = WriteFrame(buffer, i);
                    await SendAllAsync(server, buffer.AsMemory(0, size), echoStop.Token);
                }
            }, cancellationToken);

            var clientReader = new FrameReader(client);
            var frame = new byte[MaxFrame];
            var samples = new List<double>(roundTrips);
            for (var i = 0; i < roundTrips; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var size = WriteFrame(frame, i);
                await SendAllAsync(client, frame.AsMemory(0, size), cancellationToken);
                while (await clientReader.ReadFramesAsync(cancellationToken) == 0)
                {
                }

                samples.Add(Measure.Microseconds(Stopwatch.GetTimestamp() - start));
            }

            await echo;
            return Measure.Rtt(samples);
        }
    }

    private static async Task<ScenarioResult> FanoutAsync(int clients, int events, CancellationToken cancellationToken)
    {
        using var listener = Listen();
        var pairs = new List<(Socket Client, Socket Server)>(clients);
        try
        {
            for (var i = 0; i < clients; i++)
            {
                pairs.Add(await PairAsync(listener, cancellationToken));
            }

            // The same warm-up as the other contenders: FanoutWarmup frames to every client before the clock starts.
            long expected = (long)clients * events;
            long delivered = 0;
            var warmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var receivers = pairs.Select(p => Task.Run(async () =>
            {
                var reader = new FrameReader(p.Client);
                var warm = 0;
                while (warm < Measure.FanoutWarmup)
                {
                    var n = await reader.ReadFramesAsync(cancellationToken);
                    warm += n;
                    if (Interlocked.Add(ref delivered, n) == (long)clients * Measure.FanoutWarmup)
                    {
                        warmed.TrySetResult();
                    }
                }

                // The measured frames are sent only once every client read its warm-up ones: none was read above.
                var mine = 0;
                while (mine < events)
                {
                    var n = await reader.ReadFramesAsync(cancellationToken);
                    mine += n;
                    if (Interlocked.Add(ref delivered, n) == (long)clients * Measure.FanoutWarmup + expected)
                    {
                        all.TrySetResult();
                    }
                }
            }, cancellationToken)).ToArray();

            var buffer = new byte[BufferSize];
            foreach (var (_, server) in pairs)
            {
                await SendFramesAsync(server, Measure.FanoutWarmup, buffer, cancellationToken);
            }

            await warmed.Task.WaitAsync(cancellationToken);
            var stopwatch = Stopwatch.StartNew();
            foreach (var (_, server) in pairs)
            {
                await SendFramesAsync(server, events, buffer, cancellationToken);
            }

            await all.Task.WaitAsync(cancellationToken);
            stopwatch.Stop();
            await Task.WhenAll(receivers);
            return Measure.Fanout(expected, stopwatch.Elapsed, clients);
        }
        finally
        {
            foreach (var (client, server) in pairs)
            {
                client.Dispose();
                server.Dispose();
            }
        }
    }

    private static async Task<ScenarioResult> IdleAsync(int connections, CancellationToken cancellationToken)
    {
        using var listener = Listen();
        var pairs = new List<(Socket Client, Socket Server)>(connections);
        var before = Measure.Memory();
        try
        {
            for (var i = 0; i < connections; i++)
            {
                pairs.Add(await PairAsync(listener, cancellationToken));
            }

            var after = Measure.Memory();
            return Measure.Idle(before, after, connections);
        }
        finally
        {
            foreach (var (client, server) in pairs)
            {
                client.Dispose();
                server.Dispose();
            }
        }
    }

    /// <summary>Reads length-prefixed frames and counts them.</summary>
    private sealed class FrameReader(Socket socket)
    {
        private readonly byte[] _buffer = new byte[BufferSize];
        private int _start;
        private int _end;

        /// <summary>Reads once from the socket and returns how many whole frames became available (and consumes them).</summary>
        public async ValueTask<int> ReadFramesAsync(CancellationToken cancellationToken)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            var n = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                throw new IOException("the peer closed the connection");
            }

            _end += n;
            var frames = 0;
            while (_end - _start >= 4)
            {
                var length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start));
                if (_end - _start - 4 < length)
                {
                    break;
                }

                _start += 4 + length;
                frames++;
            }

            return frames;
        }
    }
}
