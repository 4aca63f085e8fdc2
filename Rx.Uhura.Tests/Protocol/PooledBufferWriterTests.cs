using Newtonsoft.Json;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Protocol;

public class PooledBufferWriterTests
{
    [Fact]
    public void Holds_no_array_until_the_first_write_and_after_release()
    {
        var writer = new PooledBufferWriter();
        Assert.True(writer.GetSpan(1).Length >= 1); // rents on demand
        writer.Reset();
        writer.Release();
        writer.Write("abc"u8);
        writer.Release(); // not empty: kept
        Assert.Equal("abc"u8.ToArray(), writer.ToArray());
        writer.Reset();
        writer.Release();
        Assert.Equal(0, writer.WrittenCount);
        writer.Write(new byte[10_000]);
        Assert.Equal(10_000, writer.WrittenCount);
    }

    [Fact]
    public void After_a_large_burst_the_next_starts_as_large_up_to_64_KiB_and_after_a_small_one_at_512_B()
    {
        var writer = new PooledBufferWriter();
        Assert.Equal(512, writer.GetSpan(1).Length); // the first burst starts small

        writer.Write(new byte[10_000]);
        writer.Reset();
        writer.Release();
        Assert.Equal(512, writer.GetSpan(1).Length); // a small burst (a broadcast's share, say) does not make the next ask for more

        writer.Write(new byte[20_000]);
        writer.Reset();
        writer.Release();
        Assert.Equal(32 * 1024, writer.GetSpan(1).Length); // 20,000 bytes last time: no doubling up from 512 this time

        writer.Reset();
        writer.Release();
        Assert.Equal(512, writer.GetSpan(1).Length); // a burst that needed little: back to small

        writer.Write(new byte[3 * PooledBufferWriter.PoolLimit]);
        writer.Reset();
        writer.Release();
        Assert.Equal(64 * 1024, writer.GetSpan(1).Length); // a huge burst does not make every later one start huge
    }

    [Fact]
    public void Grows_across_many_writes_and_keeps_every_byte()
    {
        var writer = new PooledBufferWriter();
        var expected = new List<byte>();
        for (var i = 0; i < 5_000; i++)
        {
            var chunk = new[] { (byte)i, (byte)(i >> 8), (byte)7 };
            writer.Write(chunk);
            expected.AddRange(chunk);
        }

        Assert.Equal(expected.ToArray(), writer.ToArray());
    }

    [Fact]
    public async Task A_burst_past_the_pool_limit_goes_out_whole_and_in_order_and_is_let_go_after_reset()
    {
        var writer = new PooledBufferWriter();
        var expected = new byte[5 * PooledBufferWriter.PoolLimit + 12_345];
        new Random(7).NextBytes(expected);
        for (var at = 0; at < expected.Length; at += 100_000)
        {
            writer.Write(expected.AsSpan(at, Math.Min(100_000, expected.Length - at)));
        }

        var big = new byte[3 * PooledBufferWriter.PoolLimit]; // one write larger than a segment
        new Random(8).NextBytes(big);
        Assert.True(writer.GetSpan(big.Length).Length >= big.Length); // a size hint past the limit is honoured
        big.CopyTo(writer.GetSpan(big.Length));
        writer.Advance(big.Length);
        expected = [.. expected, .. big];

        Assert.Equal(expected.Length, writer.WrittenCount);
        Assert.Equal(expected, writer.ToArray());
        using var stream = new MemoryStream();
        await writer.WriteToAsync(stream);
        Assert.Equal(expected, stream.ToArray());
        Assert.Throws<InvalidOperationException>(() => writer.WrittenMemory);

        writer.Reset();
        Assert.Equal(0, writer.WrittenCount);
        Assert.InRange(writer.GetSpan(1).Length, 1, PooledBufferWriter.PoolLimit); // nothing of the burst's size is kept
        writer.Write("after"u8);
        Assert.Equal("after"u8.ToArray(), writer.WrittenSpan.ToArray());
    }

    [Fact]
    public async Task A_large_shared_array_is_written_out_in_place_between_the_bytes_around_it()
    {
        var writer = new PooledBufferWriter();
        var shared = new byte[PooledBufferWriter.ShareMinimum + 10];
        new Random(9).NextBytes(shared);
        writer.Write("head"u8);
        writer.WriteShared(shared, 5, shared.Length - 5);
        writer.Write("tail"u8);
        writer.WriteShared(shared, 0, 3); // small: copied

        byte[] expected = [.. "head"u8.ToArray(), .. shared.AsSpan(5).ToArray(), .. "tail"u8.ToArray(), .. shared.AsSpan(0, 3).ToArray()];
        Assert.Equal(expected.Length, writer.WrittenCount);
        Assert.Equal(expected, writer.ToArray());
        using var stream = new MemoryStream();
        await writer.WriteToAsync(stream);
        Assert.Equal(expected, stream.ToArray());

        writer.Reset();
        writer.Write("next"u8);
        Assert.Equal("next"u8.ToArray(), writer.WrittenSpan.ToArray()); // the shared array is no longer referenced
    }

    [Fact]
    public void The_callers_serializer_settings_are_copied_never_changed()
    {
        var settings = new JsonSerializerSettings { DateParseHandling = DateParseHandling.DateTimeOffset };
        var options = ConnectionOptions.Default with { SerializerSettings = settings };
        var serializer = options.CreateSerializer();
        Assert.Equal(DateParseHandling.DateTimeOffset, settings.DateParseHandling);
        Assert.Equal(DateParseHandling.None, serializer.DateParseHandling);
        Assert.Same(serializer, options.CreateSerializer()); // one per options instance, shared by its connections
    }
}
