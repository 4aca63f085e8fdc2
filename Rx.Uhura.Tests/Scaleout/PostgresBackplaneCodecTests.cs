using System.Text;
using Rx.Uhura.PostgreSql;
using Rx.Uhura.Scaleout;

namespace Rx.Uhura.Tests.Scaleout;

public sealed class PostgresBackplaneCodecTests
{
    private static void AssertSame(BackplaneMessage expected, BackplaneMessage actual)
    {
        Assert.Equal(expected.Kind, actual.Kind);
        Assert.Equal(expected.Origin, actual.Origin);
        Assert.Equal(expected.Target, actual.Target);
        Assert.Equal(expected.ClientId, actual.ClientId);
        Assert.Equal(expected.CorrelationId, actual.CorrelationId);
        Assert.Equal(expected.Payload.ToArray(), actual.Payload.ToArray());
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("", "a|b%7C!c")]
    [InlineData("srv-2", "ü∑ \n")]
    public void A_small_message_travels_inline_and_comes_back_the_same(string? target, string? client)
    {
        var message = new BackplaneMessage(BackplaneMessageKind.ToClient, "o|1", target, client, -42, Encoding.UTF8.GetBytes("[\"é|v\",1,\"a|b\"]"));
        var (inline, body) = PostgresBackplaneCodec.Encode(message);
        Assert.Null(body);
        Assert.StartsWith("=", inline);
        Assert.True(Encoding.UTF8.GetByteCount(inline!) < 8000);
        AssertSame(message, PostgresBackplaneCodec.DecodeInline(inline.AsSpan(1)));
    }

    [Fact]
    public void A_message_of_8000_bytes_or_more_goes_to_the_table()
    {
        var payload = Encoding.UTF8.GetBytes("[\"big\",\"" + new string('x', 7990) + "\"]");
        var message = new BackplaneMessage(BackplaneMessageKind.Broadcast, "o", null, null, 0, payload);
        var (inline, body) = PostgresBackplaneCodec.Encode(message);
        Assert.Null(inline);
        AssertSame(message, PostgresBackplaneCodec.DecodeBody(body!));
    }

    [Fact]
    public void Bytes_that_are_not_text_go_to_the_table()
    {
        var message = new BackplaneMessage(BackplaneMessageKind.Failed, "o", "t", "c", 1, new byte[] { 0, 0xff, 1 });
        var (inline, body) = PostgresBackplaneCodec.Encode(message);
        Assert.Null(inline);
        AssertSame(message, PostgresBackplaneCodec.DecodeBody(body!));
    }
}
