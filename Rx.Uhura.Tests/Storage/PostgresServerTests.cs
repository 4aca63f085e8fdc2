using Npgsql;

namespace Rx.Uhura.Tests.Storage;

public class PostgresServerTests
{
    [Fact]
    public async Task The_test_run_starts_a_real_PostgreSQL_and_gives_each_test_its_own_database()
    {
        var server = await PostgresServer.SharedAsync();
        var first = await server.CreateDatabaseAsync();
        var second = await server.CreateDatabaseAsync();
        Assert.NotEqual(first, second);

        await using var connection = new NpgsqlConnection(first);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_database() || ' ' || split_part(version(), ' ', 2)", connection);
        var answer = (string)(await command.ExecuteScalarAsync())!;
        Assert.StartsWith(new NpgsqlConnectionStringBuilder(first).Database + " 15.", answer, StringComparison.Ordinal);
    }
}
