using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>
/// One decoder as a connection's read loop drives it: bytes arrive in chunks, the loop offers everything buffered and
/// keeps what was not consumed for the next read.
/// </summary>
internal interface IFuzzDecoder
{
    /// <summary>Most bytes the loop may keep buffered without an error (the configured limit plus its framing).</summary>
    long MaxBuffered { get; }

    /// <summary>Decodes what it can from <paramref name="buffered"/>; returns how many bytes were consumed.</summary>
    /// <exception cref="UhuraException">The input is refused: the connection would end with this error.</exception>
    long Feed(in ReadOnlySequence<byte> buffered);

    /// <summary>The peer closed the stream with <paramref name="rest"/> left over.</summary>
    void End(in ReadOnlySequence<byte> rest);

    /// <summary>Values decoded so far (for the sanity check that the valid frames do decode).</summary>
    long Decoded { get; }
}

/// <summary>Thrown by a decoder mirror when a decoded value breaks an invariant; fails the case.</summary>
internal sealed class FuzzInvariantException(string message) : Exception(message);

/// <summary>
/// Seeded fuzzing of one decoder: valid streams from a generator, mutated (truncated, bytes flipped, inserted or
/// deleted, length prefixes made huge, garbage, deep nesting, invalid UTF-8, unterminated input), cut into chunks that
/// arrive one after the other and into random segments, and fed as the read loop does.
/// Each case must end in decoded values, "need more data" within the buffering limit, or an <see cref="UhuraException"/>.
/// </summary>
/// <remarks>
/// <c>UHURA_FUZZ_CASES</c> sets the number of cases per protocol (default 100,000; e.g. 10000000 for a long run), and
/// <c>UHURA_FUZZ_SEED</c> the first seed (default 1). A failure names the case's seed and dumps its bytes.
/// </remarks>
internal static class FuzzHarness
{
    public const int DefaultCases = 100_000;

    /// <summary>How long one case may run before it counts as a hang.</summary>
    private static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(20);

    public static int Cases => int.TryParse(Environment.GetEnvironmentVariable("UHURA_FUZZ_CASES"), out var n) && n > 0 ? n : DefaultCases;

    private static int FirstSeed => int.TryParse(Environment.GetEnvironmentVariable("UHURA_FUZZ_SEED"), out var s) ? s : 1;

    /// <summary>Tokens that often break parsers: structure, escapes, invalid UTF-8, delimiters, odd numbers.</summary>
    private static readonly byte[][] Tokens =
    [
        "\""u8.ToArray(), "\\"u8.ToArray(), "["u8.ToArray(), "]"u8.ToArray(), "{"u8.ToArray(), "}"u8.ToArray(),
        ","u8.ToArray(), ":"u8.ToArray(), "\0"u8.ToArray(), "\0\0"u8.ToArray(), "\r\n"u8.ToArray(), "\n"u8.ToArray(),
        "\"\\ud800\""u8.ToArray(), "\"\\udc00\\ud800\""u8.ToArray(), "\\u0000"u8.ToArray(), "\\uZZZZ"u8.ToArray(),
        [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xEF, 0xBB, 0xBF],
        "1e99999"u8.ToArray(), "-0"u8.ToArray(), "123456789012345678901234567890"u8.ToArray(), "NaN"u8.ToArray(),
        "null"u8.ToArray(), "true"u8.ToArray(), "/*"u8.ToArray(), "//"u8.ToArray(), "'"u8.ToArray(), "\"\":"u8.ToArray(),
        "\"args\":"u8.ToArray(), "\"id\":"u8.ToArray(), "\"topic\":"u8.ToArray(), "\"message\":"u8.ToArray(),
    ];

    /// <summary>
    /// Runs <see cref="Cases"/> cases; <paramref name="generate"/> makes a valid stream as pieces (frames), each case a
    /// new <paramref name="decoder"/>. Fails with the seed and a hex dump of the first bad case.
    /// </summary>
    public static void Run(string protocol, Func<Random, List<byte[]>> generate, Func<IFuzzDecoder> decoder, int maxDepth, long maxFrame, ITestOutputHelper output)
    {
        var cases = Cases;
        var first = FirstSeed;
        var current = first;
        byte[]? currentInput = null;
        long decoded = 0, refused = 0, pending = 0;
        var clock = Stopwatch.StartNew();
        var worker = Task.Factory.StartNew(
            () =>
            {
                for (var i = 0; i < cases; i++)
                {
                    var seed = first + i;
                    Volatile.Write(ref current, seed);
                    var rng = new Random(seed);
                    var input = Mutate(rng, generate(rng), maxDepth, maxFrame);
                    Volatile.Write(ref currentInput, input);
                    var d = decoder();
                    switch (RunCase(rng, input, d, seed))
                    {
                        case Outcome.Refused:
                            refused++;
                            break;
                        case Outcome.Pending:
                            pending++;
                            break;
                    }

                    decoded += d.Decoded;
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

        var lastSeed = -1;
        var lastProgress = Stopwatch.StartNew();
        while (Task.WaitAny([worker], TimeSpan.FromMilliseconds(200)) < 0)
        {
            var seed = Volatile.Read(ref current);
            if (seed != lastSeed)
            {
                lastSeed = seed;
                lastProgress.Restart();
            }
            else if (lastProgress.Elapsed > HangTimeout)
            {
                Assert.Fail($"{protocol}: case {seed} hangs (no progress in {HangTimeout.TotalSeconds} s).\n{Dump(Volatile.Read(ref currentInput)!)}");
            }
        }

        if (worker.Exception is { } failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure.InnerException!);
        }

        output.WriteLine($"{protocol}: {cases:N0} cases (seeds {first}..{first + cases - 1}) in {clock.Elapsed.TotalSeconds:F1} s: {decoded:N0} values decoded, {refused:N0} cases refused with a typed error, {pending:N0} left waiting for more data.");
        if (cases < 1000)
        {
            return; // reproducing a few seeds: the proportions below mean nothing
        }

        Assert.True(decoded > cases / 4, $"{protocol}: only {decoded} values decoded in {cases} cases: the generator makes too few valid frames.");
        Assert.True(refused > cases / 10, $"{protocol}: only {refused} of {cases} cases refused: the mutations are too gentle.");
    }

    private enum Outcome
    {
        Done,
        Pending,
        Refused,
    }

    /// <summary>Feeds one input in random chunks, each buffer cut into random segments, as the read loop does.</summary>
    private static Outcome RunCase(Random rng, byte[] input, IFuzzDecoder decoder, int seed)
    {
        var buffered = new List<byte>(input.Length);
        var offset = 0;
        try
        {
            while (offset < input.Length)
            {
                var chunk = rng.Next(4) switch
                {
                    0 => input.Length - offset,
                    1 => 1 + rng.Next(Math.Min(8, input.Length - offset)),
                    _ => 1 + rng.Next(input.Length - offset),
                };
                buffered.AddRange(input.AsSpan(offset, chunk));
                offset += chunk;
                var sequence = Segments(rng, buffered);
                var consumed = decoder.Feed(sequence);
                if (consumed < 0 || consumed > buffered.Count)
                {
                    throw new FuzzInvariantException($"consumed {consumed} of {buffered.Count} buffered bytes");
                }

                buffered.RemoveRange(0, (int)consumed);
                if (buffered.Count > decoder.MaxBuffered)
                {
                    throw new FuzzInvariantException($"{buffered.Count} bytes buffered without an error (limit {decoder.MaxBuffered})");
                }
            }

            decoder.End(Segments(rng, buffered));
            return buffered.Count > 0 ? Outcome.Pending : Outcome.Done;
        }
        catch (UhuraException)
        {
            return Outcome.Refused;
        }
        catch (Exception ex)
        {
            throw new Xunit.Sdk.XunitException($"Case with seed {seed} (UHURA_FUZZ_SEED={seed} UHURA_FUZZ_CASES=1 reproduces it) failed: {ex}\n{Dump(input)}");
        }
    }

    /// <summary>The bytes as a sequence of 1 to 5 segments cut at random points (empty segments included).</summary>
    internal static ReadOnlySequence<byte> Segments(Random rng, List<byte> bytes)
    {
        var data = bytes.ToArray();
        var count = rng.Next(3) == 0 ? 1 : 1 + rng.Next(5);
        if (count == 1 || data.Length == 0)
        {
            return new ReadOnlySequence<byte>(data);
        }

        var cuts = new int[count + 1];
        for (var i = 1; i < count; i++)
        {
            cuts[i] = rng.Next(data.Length + 1);
        }

        cuts[count] = data.Length;
        Array.Sort(cuts);
        Segment? head = null, tail = null;
        for (var i = 0; i < count; i++)
        {
            var part = data.AsMemory(cuts[i], cuts[i + 1] - cuts[i]);
            tail = tail is null ? head = new Segment(part, 0) : tail.Append(part);
        }

        return new ReadOnlySequence<byte>(head!, 0, tail!, tail!.Memory.Length);
    }

    /// <summary>Joins the pieces and applies zero to three mutations.</summary>
    private static byte[] Mutate(Random rng, List<byte[]> pieces, int maxDepth, long maxFrame)
    {
        // Huge or odd length prefixes go where a frame starts.
        if (rng.Next(8) == 0 && pieces.Count > 0)
        {
            var piece = pieces[rng.Next(pieces.Count)];
            if (piece.Length >= 4)
            {
                uint[] lengths = [0, 1, 2, 5, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, (uint)maxFrame, (uint)maxFrame + 1, (uint)maxFrame + 5, (uint)rng.Next()];
                BinaryPrimitives.WriteUInt32BigEndian(piece, lengths[rng.Next(lengths.Length)]);
            }
        }

        var bytes = new List<byte>(pieces.Sum(p => p.Length));
        foreach (var piece in pieces)
        {
            bytes.AddRange(piece);
        }

        var mutations = rng.Next(10) < 3 ? 0 : 1 + rng.Next(3);
        for (var m = 0; m < mutations; m++)
        {
            var at = rng.Next(bytes.Count + 1);
            switch (rng.Next(12))
            {
                case 0: // truncate
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case 1: // flip bytes
                    for (var k = 1 + rng.Next(4); k > 0 && bytes.Count > 0; k--)
                    {
                        bytes[rng.Next(bytes.Count)] ^= (byte)(1 << rng.Next(8));
                    }

                    break;
                case 2: // random bytes
                    bytes.InsertRange(at, RandomBytes(rng, 1 + rng.Next(8)));
                    break;
                case 3: // delete a range
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + rng.Next(16)));
                    break;
                case 4: // duplicate a range
                    var length = Math.Min(bytes.Count - at, 1 + rng.Next(64));
                    bytes.InsertRange(at, bytes.GetRange(at, length));
                    break;
                case 5 or 6: // a troublesome token
                    bytes.InsertRange(at, Tokens[rng.Next(Tokens.Length)]);
                    break;
                case 7: // a troublesome token replaces a byte
                    if (at < bytes.Count)
                    {
                        bytes.RemoveAt(at);
                    }

                    bytes.InsertRange(at, Tokens[rng.Next(Tokens.Length)]);
                    break;
                case 8: // deep nesting, just over the limit or far beyond
                    var depth = rng.Next(2) == 0 ? maxDepth + rng.Next(-1, 3) : maxDepth + rng.Next(1000);
                    var open = rng.Next(2) == 0 ? "[" : "{\"a\":";
                    var close = open == "[" ? "]" : "}";
                    var deep = new StringBuilder().Insert(0, open, depth).Append('1');
                    if (rng.Next(3) != 0)
                    {
                        deep.Insert(deep.Length, close, depth);
                    }

                    bytes.InsertRange(at, Encoding.UTF8.GetBytes(deep.ToString()));
                    break;
                case 9: // endless: an unterminated string, array or run of garbage, sometimes past the frame limit
                    var run = (int)Math.Min(rng.Next(2) == 0 ? rng.Next(64) : maxFrame + rng.Next(64), 1 << 20);
                    var filler = new byte[run];
                    var endless = rng.Next(3);
                    for (var k = 0; k < run; k++)
                    {
                        filler[k] = endless switch
                        {
                            0 => (byte)'a',
                            1 => k % 2 == 0 ? (byte)'[' : (byte)'1',
                            _ => k % 3 == 2 ? (byte)',' : (byte)'1',
                        };
                    }

                    bytes.InsertRange(at, endless == 0 ? [(byte)'"', .. filler] : filler);
                    break;
                case 10: // garbage replaces everything
                    bytes.Clear();
                    bytes.AddRange(RandomBytes(rng, rng.Next(300)));
                    break;
                default: // a 4-byte big-endian number at a random place
                    var number = new byte[4];
                    BinaryPrimitives.WriteUInt32BigEndian(number, rng.Next(3) == 0 ? 0xFFFFFFFF : (uint)rng.Next((int)Math.Min(maxFrame * 2, int.MaxValue)));
                    bytes.InsertRange(at, number);
                    break;
            }
        }

        return bytes.ToArray();
    }

    private static byte[] RandomBytes(Random rng, int count)
    {
        var bytes = new byte[count];
        rng.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A hex dump (16 bytes a line, with ASCII), cut after 4 KiB.</summary>
    internal static string Dump(byte[] bytes)
    {
        var text = new StringBuilder($"Input ({bytes.Length} bytes):\n");
        var shown = Math.Min(bytes.Length, 4096);
        for (var i = 0; i < shown; i += 16)
        {
            var line = bytes.AsSpan(i, Math.Min(16, shown - i));
            text.Append($"{i:x6}  ").Append(Convert.ToHexString(line).PadRight(33)).Append(' ');
            foreach (var b in line)
            {
                text.Append(b is >= 0x20 and < 0x7f ? (char)b : '.');
            }

            text.Append('\n');
        }

        if (shown < bytes.Length)
        {
            text.Append($"... {bytes.Length - shown} more bytes\n");
        }

        return text.ToString();
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
