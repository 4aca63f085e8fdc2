using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Security;

public class SessionIdTests
{
    [Fact]
    public void Session_ids_carry_at_least_128_bits_from_a_cryptographic_source_and_do_not_repeat()
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        var ids = Enumerable.Range(0, 100_000).Select(_ => SessionIds.New()).ToList();
        Assert.All(ids, id => Assert.True(id.Length == SessionIds.Length && id.All(alphabet.Contains), id));
        Assert.True(SessionIds.Length * Math.Log2(alphabet.Length) >= 128);
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());

        // Every character position uses the whole alphabet about evenly: no fixed prefix, counter or clock in the id.
        for (var position = 0; position < SessionIds.Length; position++)
        {
            var counts = ids.GroupBy(id => id[position]).Select(g => g.Count()).ToList();
            Assert.Equal(alphabet.Length, counts.Count);
            Assert.InRange(counts.Min(), 1200, 2000); // 100,000 / 62 ≈ 1613 each
        }
    }
}
