using System.Buffers;
using System.Text;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

public class DelimitedMessageReaderTests
{
    [Theory]
    [InlineData("\0\0", 1)]
    [InlineData("\0\0", 2)]
    [InlineData("\0\0", 7)]
    [InlineData("\r\n", 1)]
    [InlineData("\r\n", 3)]
    public void Frames_fed_in_small_reads_come_out_whole_even_when_a_delimiter_straddles_two_reads(string delimiter, int chunk)
    {
        // Lone halves of the delimiter inside frames, empty frames, a frame ending right at a read boundary.
        string[] frames = ["{\"a\":1}", string.Empty, "x" + delimiter[0] + "y", "w" + delimiter[1] + "z", new string('q', 50), "end"];
        var wire = Encoding.UTF8.GetBytes(string.Concat(frames.Select(f => f + delimiter)));
        var got = new List<string>();
        var buffered = Array.Empty<byte>();
        var reader = new DelimitedMessageReader(Encoding.UTF8.GetBytes(delimiter), 1024);
        for (var at = 0; at < wire.Length; at += chunk)
        {
            buffered = [.. buffered, .. wire.AsSpan(at, Math.Min(chunk, wire.Length - at)).ToArray()];
            var buffer = new ReadOnlySequence<byte>(buffered);
            while (reader.TryRead(ref buffer, out var frame))
            {
                got.Add(Encoding.UTF8.GetString(frame.ToArray()));
            }

            buffered = buffer.ToArray();
        }

        Assert.Equal(frames, got);
        Assert.Empty(buffered);
    }

    [Fact]
    public void A_frame_longer_than_the_limit_is_refused_before_its_delimiter_arrives()
    {
        var buffer = new ReadOnlySequence<byte>(Enumerable.Repeat((byte)'x', 103).ToArray());
        Assert.Throws<FrameTooLargeException>(() => new DelimitedMessageReader("\0\0"u8, 100).TryRead(ref buffer, out _));
        var whole = new ReadOnlySequence<byte>([.. new byte[101].Select(_ => (byte)'x'), 0, 0]);
        Assert.Throws<FrameTooLargeException>(() => new DelimitedMessageReader("\0\0"u8, 100).TryRead(ref whole, out _));
    }
}
