using System.Buffers;
using System.Text;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

public class JsonArrayFramerTests
{
    /// <summary>Feeds <paramref name="chunks"/> as a pipe would: unconsumed bytes stay and new bytes are appended.</summary>
    private static List<string> Frame(IEnumerable<byte[]> chunks, long max = 1 << 20)
    {
        var framer = new JsonArrayFramer(max);
        var buffered = new List<byte>();
        var result = new List<string>();
        foreach (var chunk in chunks)
        {
            buffered.AddRange(chunk);
            var sequence = new ReadOnlySequence<byte>(buffered.ToArray());
            var consumed = sequence.Start;
            var examined = sequence.Start;
            while (framer.TryParseMessage(sequence.Slice(consumed), ref consumed, ref examined, out var element))
            {
                result.Add(Encoding.UTF8.GetString(element));
            }

            buffered.RemoveRange(0, (int)sequence.Slice(sequence.Start, consumed).Length);
        }

        return result;
    }

    private static List<string> FrameText(string text, int chunkSize)
        => Frame(Encoding.UTF8.GetBytes(text).Chunk(chunkSize));

    private const string Stream = "[\n[\"_set\",{}]\n,\n[\"start\",{\"objectMode\":true}]\n,\n{\"args\":[\"ping\",\"a]b}c\\\"[{\",[1,{\"x\":[]}]],\"id\":\"7\"}\n]\n";

    private static readonly string[] Expected =
    [
        "[\"_set\",{}]",
        "[\"start\",{\"objectMode\":true}]",
        "{\"args\":[\"ping\",\"a]b}c\\\"[{\",[1,{\"x\":[]}]],\"id\":\"7\"}",
    ];

    [Fact]
    public void A_whole_stream_yields_each_element()
        => Assert.Equal(Expected, FrameText(Stream, int.MaxValue));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(16)]
    public void Elements_split_at_any_byte_boundary_come_out_whole(int chunkSize)
        => Assert.Equal(Expected, FrameText(Stream, chunkSize));

    [Fact]
    public void A_frame_plus_half_of_the_next_yields_exactly_the_whole_frame()
    {
        var framer = new JsonArrayFramer(1024);
        var sequence = new ReadOnlySequence<byte>("[[\"a\",1],[\"b\",\"2"u8.ToArray());
        var consumed = sequence.Start;
        var examined = sequence.Start;
        Assert.True(framer.TryParseMessage(sequence.Slice(consumed), ref consumed, ref examined, out var first));
        Assert.Equal("[\"a\",1]", Encoding.UTF8.GetString(first));
        Assert.False(framer.TryParseMessage(sequence.Slice(consumed), ref consumed, ref examined, out _));
        Assert.Equal(sequence.End, examined);
        Assert.Equal("[\"b\",\"2", Encoding.UTF8.GetString(sequence.Slice(consumed)));
    }

    [Fact]
    public void Compact_streams_without_newlines_are_accepted()
        => Assert.Equal(["[\"a\"]", "{\"args\":[\"b\"]}"], FrameText(" [ [\"a\"] ,\t{\"args\":[\"b\"]} ] ", 2));

    [Fact]
    public void Strings_with_escaped_backslashes_end_where_they_should()
        => Assert.Equal(["[\"a\\\\\",\"]\"]"], FrameText("[[\"a\\\\\",\"]\"]]", 1));

    [Fact]
    public void A_stream_that_is_not_an_array_is_a_decode_error()
    {
        var error = Assert.Throws<DecodeException>(() => FrameText(".", 1));
        Assert.Contains("'.'", error.Message);
        Assert.Throws<DecodeException>(() => FrameText("{\"a\":1}", 4));
    }

    [Fact]
    public void Garbage_between_elements_is_a_decode_error()
        => Assert.Throws<DecodeException>(() => FrameText("[[\"a\"]\n.\n", 1));

    [Fact]
    public void An_element_that_is_not_an_array_or_object_is_a_decode_error()
        => Assert.Throws<DecodeException>(() => FrameText("[1]", 1));

    [Fact]
    public void Data_after_the_closing_bracket_is_a_decode_error()
        => Assert.Throws<DecodeException>(() => FrameText("[[\"a\"]]\n[", 1));

    [Fact]
    public void An_oversized_element_fails_before_it_is_buffered_whole()
    {
        var big = "[[\"x\",\"" + new string('a', 5000) + "\"]]";
        var framer = new JsonArrayFramer(1000);
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(big[..1500]));
        var consumed = buffer.Start;
        var examined = buffer.Start;
        var error = Assert.Throws<FrameTooLargeException>(() => framer.TryParseMessage(buffer, ref consumed, ref examined, out _));
        Assert.Equal(1000, error.Limit);
    }

    [Fact]
    public void Each_byte_of_a_large_element_split_in_many_reads_is_scanned_once()
    {
        // A quadratic rescan would make this slow; the framer resumes where it stopped.
        var big = "[[\"x\",\"" + new string('a', 200_000) + "\"]]";
        var result = FrameText(big, 1000);
        Assert.Single(result);
        Assert.Equal(big.Length - 2, result[0].Length);
    }
}
