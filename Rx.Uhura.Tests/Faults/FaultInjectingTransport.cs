using System.Net;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Faults;

/// <summary>
/// A client-side transport that opens real connections through <paramref name="inner"/> and injects seeded faults into
/// each: reads and writes split at random points (the peer's framers see every boundary), and the link cut after a
/// random number of bytes in either direction, up to <see cref="FaultPlan.MaxCuts"/> cuts per run. The same seed makes
/// the same choices (the timing of real threads still varies: a failure prints its seed so it can be run again).
/// </summary>
internal sealed class FaultInjectingTransport(ITransport inner, FaultPlan plan) : ITransport
{
    private readonly Random _random = new(plan.Seed);
    private int _cuts;
    private int _connections;

    /// <summary>Links cut so far.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>Connections opened so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
        => inner.BindAsync(endPoint, cancellationToken);

    public async ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        var stream = await inner.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _connections);
        int seed;
        long budget;
        lock (_random)
        {
            seed = _random.Next();
            budget = _random.Next(plan.MinBytesBeforeCut, plan.MaxBytesBeforeCut);
        }

        return new FaultyStream(stream, new Random(seed), plan, TryTakeCut, budget);
    }

    /// <summary>Counts a cut if the run allows one more.</summary>
    private bool TryTakeCut()
    {
        while (true)
        {
            var cuts = Volatile.Read(ref _cuts);
            if (cuts >= plan.MaxCuts)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _cuts, cuts + 1, cuts) == cuts)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// A stream that splits every read and write, stalls a direction now and then when the plan has a clock, and ends
    /// abruptly when its byte budget is spent.
    /// </summary>
    private sealed class FaultyStream(Stream inner, Random random, FaultPlan plan, Func<bool> mayCut, long budget) : Stream
    {
        private long _budget = budget;
        private int _cut;
        private bool _exempt;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ThrowIfCut();
            await StallAsync(cancellationToken).ConfigureAwait(false); // what the peer sends (a Welcome, acks) comes late
            var size = Math.Min(buffer.Length, NextChunk());
            var read = await inner.ReadAsync(buffer[..size], cancellationToken).ConfigureAwait(false);
            Spend(read);
            return read;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (!buffer.IsEmpty)
            {
                ThrowIfCut();
                await StallAsync(cancellationToken).ConfigureAwait(false);
                var size = Math.Min(buffer.Length, NextChunk());
                await inner.WriteAsync(buffer[..size], cancellationToken).ConfigureAwait(false);
                await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
                Spend(size);
                buffer = buffer[size..];
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync() => inner.DisposeAsync();

        private int NextChunk()
        {
            lock (random)
            {
                return random.Next(1, plan.MaxChunk + 1);
            }
        }

        /// <summary>Now and then (one call in <see cref="FaultPlan.StallOneIn"/>), waits up to <see cref="FaultPlan.MaxStall"/> on the plan's clock.</summary>
        private Task StallAsync(CancellationToken cancellationToken)
        {
            if (plan.Clock is not { } clock || plan.StallOneIn <= 0)
            {
                return Task.CompletedTask;
            }

            TimeSpan stall;
            lock (random)
            {
                if (random.Next(plan.StallOneIn) != 0)
                {
                    return Task.CompletedTask;
                }

                stall = TimeSpan.FromTicks(random.NextInt64(1, Math.Max(2, plan.MaxStall.Ticks)));
            }

            return Task.Delay(stall, clock, cancellationToken);
        }

        /// <summary>Counts bytes against the budget; the link is cut once it is spent (while the run allows more cuts).</summary>
        private void Spend(int bytes)
        {
            if (_exempt || Interlocked.Add(ref _budget, -bytes) > 0)
            {
                return;
            }

            if (!mayCut())
            {
                _exempt = true; // this run has had its cuts: the link lives on
                return;
            }

            if (Interlocked.Exchange(ref _cut, 1) == 0)
            {
                inner.Dispose(); // both directions end at once, as when a cable is pulled
            }

            throw new IOException("fault injected: the link was cut");
        }

        private void ThrowIfCut()
        {
            if (Volatile.Read(ref _cut) != 0)
            {
                throw new IOException("fault injected: the link was cut");
            }
        }
    }
}

/// <summary>What a seeded run does to its links.</summary>
internal sealed record FaultPlan(int Seed)
{
    /// <summary>A plan drawn from <paramref name="random"/>: up to <paramref name="maxCuts"/> cuts, splits and (half the time) stalls on <paramref name="clock"/>.</summary>
    public static FaultPlan Draw(int seed, Random random, TimeProvider clock, int maxCuts, int maxBytesBeforeCut) => new(seed)
    {
        MaxCuts = random.Next(0, maxCuts),
        MaxChunk = random.Next(1, 600),
        MaxBytesBeforeCut = random.Next(200, maxBytesBeforeCut),
        Clock = clock,
        StallOneIn = random.Next(2) == 0 ? 0 : random.Next(5, 500),
        MaxStall = TimeSpan.FromMilliseconds(random.Next(1, 100)),
    };

    /// <summary>How the plan reads in a failing seed's story.</summary>
    public string Story => $"up to {MaxCuts} cuts within {MaxBytesBeforeCut} bytes, chunks up to {MaxChunk} bytes, a stall in {StallOneIn} of up to {MaxStall.TotalMilliseconds} ms";

    /// <summary>The largest piece a read or write is split into.</summary>
    public int MaxChunk { get; init; } = 512;

    /// <summary>A link is cut after a number of bytes drawn between these (both directions counted).</summary>
    public int MinBytesBeforeCut { get; init; } = 64;

    /// <summary>See <see cref="MinBytesBeforeCut"/>.</summary>
    public int MaxBytesBeforeCut { get; init; } = 40_000;

    /// <summary>Cuts in one run; after them links live on, so the run ends.</summary>
    public int MaxCuts { get; init; } = 6;

    /// <summary>The clock stalls wait on; null (the default) = no stalls.</summary>
    public TimeProvider? Clock { get; init; }

    /// <summary>One read or write in this many first waits a random time up to <see cref="MaxStall"/> (0 = never).</summary>
    public int StallOneIn { get; init; }

    /// <summary>The longest stall.</summary>
    public TimeSpan MaxStall { get; init; } = TimeSpan.FromMilliseconds(50);
}
