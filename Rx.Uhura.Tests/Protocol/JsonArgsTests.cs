using System.Text;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

public class JsonArgsTests
{
    private static void Validate(string json, int depth = 64) => JsonArgs.ValidateArray(Encoding.UTF8.GetBytes(json), depth, "arguments");

    [Theory]
    [InlineData("[]")]
    [InlineData(" [1,\"a\",{\"b\":[null,true]},2.5e3] ")]
    public void Accepts_a_well_formed_array(string json) => Validate(json);

    [Theory]
    [InlineData("")]
    [InlineData("[1,")]
    [InlineData("[1]x")]
    [InlineData("[1] [2]")]
    [InlineData("[01]")]
    [InlineData("['a']")]
    [InlineData("[1,]")]
    [InlineData("[NaN]")]
    public void Rejects_malformed_json_with_a_DecodeException(string json)
        => Assert.Throws<DecodeException>(() => Validate(json));

    [Fact]
    public void Rejects_invalid_utf8() => Assert.Throws<DecodeException>(() => JsonArgs.ValidateArray([(byte)'[', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)']'], 64, "arguments"));

    [Fact]
    public void Rejects_nesting_deeper_than_the_limit()
    {
        Validate(new string('[', 10) + new string(']', 10), depth: 10);
        Assert.Throws<DecodeException>(() => Validate(new string('[', 11) + new string(']', 11), depth: 10));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("1")]
    [InlineData("\"a\"")]
    public void Rejects_json_that_is_not_an_array_with_a_ProtocolException(string json)
        => Assert.Throws<ProtocolException>(() => Validate(json));

    [Fact]
    public void Parses_what_it_validated()
    {
        var args = JsonArgs.Parse(Encoding.UTF8.GetBytes("[1,\"two\",{\"three\":3},1.0]"), 64);
        Assert.Equal(4, args.Length);
        Assert.Equal(1, (int)args[0]);
        Assert.Equal("two", (string?)args[1]);
        Assert.Equal(3, (int)args[2]["three"]!);
        Assert.Equal(Newtonsoft.Json.Linq.JTokenType.Float, args[3].Type);
    }
}
