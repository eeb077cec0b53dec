"""The remote's resource is core's now (see core 0001): model state only, the column and constraint stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('configs', '0001_initial'),
        ('core', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='remoteconfig',
                    name='resource',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='remotes', to='core.resource'),
                ),
            ],
        ),
    ]
